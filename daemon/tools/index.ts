// Tooling around the daemon, never loaded by a running daemon: daemons started as child processes,
// a local testnet of them, the phases of a trade read from their records, the demo (`sdte demo`) and
// the relay `sdte devnet up` starts.
export * from './child-daemons.ts'
export * from './testnet.ts'
export * from './phases.ts'
export * from './demo.ts'
export * from './netns.ts'
export * from './tcp-relay.ts'
export * from './devnet-relay.ts'
