import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

/** The release version, from package.json. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

/** The commit this checkout is at, when it is a git checkout and git is there. */
function commit (): string | undefined {
  try {
    const out = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: new URL('..', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8' }).trim()
    return out === '' ? undefined : out
  } catch {
    return undefined
  }
}

/** What `sdte --version` prints: the version, the commit and the Node version. */
export function versionText (): string {
  return `sdte ${VERSION} (commit ${commit() ?? 'unknown'}, node ${process.version})`
}
