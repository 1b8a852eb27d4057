// Tooling for the contracts, never loaded by a running daemon: the Solidity compiler driver, the
// deployer, anvil, and the local devnet (`sdte devnet`, `sdte deploy` parse their flags in daemon/cli.ts).
export * from './anvil.ts'
export * from './compile.ts'
export * from './deploy.ts'
export * from './devnet.ts'
export * from './market.ts'
