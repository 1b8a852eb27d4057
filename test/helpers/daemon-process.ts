// Daemons as separate processes, for the end-to-end tests (the same code the demo uses).
import { createServer } from 'node:net'
export { startDaemon, runCli, waitFor, waitNodeBooted, CLI, ROOT } from '../../daemon/tools/child-daemons.ts'
export type { DaemonProcess, StartOptions } from '../../daemon/tools/child-daemons.ts'

/**
 * A TCP port free on 127.0.0.1 a moment ago, for a daemon's --metrics-port. Released before the daemon binds it, so
 * another process could take it meanwhile (a small race the tests accept).
 */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => { resolve(port) })
    })
  })
}
