// The daemon as other parts (its tools) see it: the daemon itself, the control API client and its
// errors. See docs/api.md and docs/guide.md. (Not the command line, daemon/cli.ts: it loads the tools
// lazily, and a tool loading it back would wait on its own top-level await.)
export { SdteDaemon } from './daemon.ts'
export * from './rpc/client.ts'
export * from './rpc/errors.ts'
