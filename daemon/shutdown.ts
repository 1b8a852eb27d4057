// Process lifecycle: SIGINT/SIGTERM stop the daemon gracefully; a second signal, or a stop that
// outlasts its grace period, forces the process out.
import { logger } from './log.ts'

const log = logger('sdte:process')

export function onShutdownSignals (stop: () => Promise<void>, graceMs: number): void {
  let stopping = false
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn('second signal: forcing exit', { signal })
      process.exit(130)
    }
    stopping = true
    log.info('stopping on signal (send it again to force)', { signal })
    const force = setTimeout(() => {
      log.error('graceful stop took too long: forcing exit', { graceMs })
      process.exit(1)
    }, graceMs)
    force.unref()
    stop().then(() => { clearTimeout(force) }, (err: unknown) => {
      log.error('error while stopping', { err: err as Error })
      process.exitCode = 1
    })
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
}
