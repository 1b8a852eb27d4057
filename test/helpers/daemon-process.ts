// Daemons as separate processes, for the end-to-end tests (the same code the demo uses).
export { startDaemon, runCli, waitFor, waitNodeBooted, CLI, ROOT } from '../../daemon/tools/child-daemons.ts'
export type { DaemonProcess, StartOptions } from '../../daemon/tools/child-daemons.ts'
