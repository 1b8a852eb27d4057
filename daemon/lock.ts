// The datadir lock, taken before anything else starts: DIR/daemon.lock holds the pid of the daemon
// that owns the directory. A second daemon on the same datadir is refused with a clear message; a
// lock left by a daemon that died (its pid no longer runs) is taken over.
import { SdteError } from '../config/index.ts'
import { openSync, writeSync, closeSync, readFileSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'

export const LOCK_FILE = 'daemon.lock'

export class DatadirLockedError extends SdteError {
  override name = 'DatadirLockedError'
  override code = 'ERR_DATADIR_LOCKED'
  readonly pid: number
  constructor (datadir: string, pid: number) {
    super(`datadir ${datadir} is in use by another sdte daemon (pid ${pid}); stop it first or use another --datadir`)
    this.pid = pid
  }
}

function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export interface DatadirLock { path: string, release: () => void }

export function lockDatadir (datadir: string): DatadirLock {
  const path = join(datadir, LOCK_FILE)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600)
      writeSync(fd, String(process.pid))
      closeSync(fd)
      let released = false
      return {
        path,
        release: () => {
          if (released) return
          released = true
          try { unlinkSync(path) } catch {}
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number.parseInt(readFileSync(path, 'utf8'), 10)
      if (Number.isInteger(pid) && pid !== process.pid && processAlive(pid)) throw new DatadirLockedError(datadir, pid)
      // Stale lock: its owner is gone. Remove it and try once more.
      try { unlinkSync(path) } catch {}
    }
  }
  throw new DatadirLockedError(datadir, -1)
}
