import { readFileSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { execFileSync } from 'node:child_process'

/** The release version, from package.json. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

/**
 * The commit this checkout is at, when it is a git checkout and git is there. Only if the checkout is
 * sdte's own: an installed package (npm install -g) under some other repository's folder is not.
 */
function commit (): string | undefined {
  const root = realpathSync(fileURLToPath(new URL('..', import.meta.url)))
  try {
    const [top, out] = execFileSync('git', ['rev-parse', '--show-toplevel', '--short=12', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8' }).trim().split('\n')
    return out === undefined || out === '' || realpathSync(top) !== root ? undefined : out
  } catch {
    return undefined
  }
}

/** What `sdte --version` prints: the version, the commit and the Node version. */
export function versionText (): string {
  return `sdte ${VERSION} (commit ${commit() ?? 'unknown'}, node ${process.version})`
}
