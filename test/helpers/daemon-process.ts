// Daemons as separate processes, for the end-to-end tests (the same code the demo uses).
export { startDaemon, runCli, waitFor, CLI, ROOT } from '../../daemon/processes.ts'
export type { DaemonProcess, StartOptions } from '../../daemon/processes.ts'
