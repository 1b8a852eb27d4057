// The daemon's configuration: the options tree, how it is resolved (defaults < config.json <
// SDTE_* environment < flags), and the logging and metrics types the parts share.
export * from './options.ts'
export * from './logging.ts'
export * from './errors.ts'
export * from './metrics.ts'
// What the daemon's launchers put in its process's environment (bin/sdte, daemon/tools/child-daemons.ts).
export { DAEMON_PROCESS_ENV, DAEMON_NODE_OPTIONS } from './daemon-defaults.ts'
