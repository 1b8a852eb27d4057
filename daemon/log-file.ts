// The log file (--log-file): lines appended to FILE; when a line would take it over maxBytes, FILE
// becomes FILE.1 (FILE.1 becomes FILE.2, ...; the oldest, FILE.<maxFiles>, is dropped) and a new FILE
// is started. Writes are synchronous so that the last lines before a crash are on disk; a write that
// fails (disk full) goes to stderr instead, and logging never throws into the daemon.
import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

export interface LogFileOptions {
  path: string
  /** Size at which the file is rotated (a line longer than this still goes whole into a new file). */
  maxBytes: number
  /** Rotated files kept besides the current one. */
  maxFiles: number
}

export class RotatingLogFile {
  readonly options: LogFileOptions
  private fd: number
  private size: number

  constructor (options: LogFileOptions) {
    this.options = options
    mkdirSync(dirname(options.path), { recursive: true, mode: 0o700 })
    this.fd = openSync(options.path, 'a', 0o600)
    this.size = fstatSync(this.fd).size
  }

  write (line: string): void {
    const bytes = Buffer.from(line + '\n')
    try {
      if (this.size > 0 && this.size + bytes.length > this.options.maxBytes) this.rotate()
      writeSync(this.fd, bytes)
      this.size += bytes.length
    } catch (err) {
      process.stderr.write(`${line}\n(log file ${this.options.path}: ${(err as Error).message})\n`)
    }
  }

  private rotate (): void {
    closeSync(this.fd)
    const { path, maxFiles } = this.options
    try {
      rmSync(`${path}.${maxFiles}`, { force: true })
      for (let i = maxFiles - 1; i >= 1; i--) {
        try { renameSync(`${path}.${i}`, `${path}.${i + 1}`) } catch {}
      }
      if (maxFiles > 0) renameSync(path, `${path}.1`)
      else rmSync(path, { force: true })
    } finally {
      // Rotated or not, the next line has a file to go to.
      this.fd = openSync(path, 'a', 0o600)
      this.size = fstatSync(this.fd).size
    }
  }

  close (): void {
    try { closeSync(this.fd) } catch {}
  }
}
