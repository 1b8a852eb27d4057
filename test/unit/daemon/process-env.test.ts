// The daemon process's environment (config/daemon-defaults.ts): bin/sdte and the tools' launcher set the
// same variables and V8 flags and preload bin/strip-types.js, and neither overrides what the user set.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DAEMON_NODE_OPTIONS, DAEMON_PROCESS_ENV } from '../../../config/daemon-defaults.ts'
import { daemonEnv, ROOT, STRIP_TYPES } from '../../../daemon/tools/child-daemons.ts'

/**
 * The environment bin/sdte hands to node, given `env`: a copy of the script (in DIR/bin/) with its last line
 * (exec node) printing it instead; DIR in what it prints is replaced by this checkout's root.
 */
function launcherEnv (env: Record<string, string>): Record<string, string> {
  const script = readFileSync(join(ROOT, 'bin', 'sdte'), 'utf8')
  const lines = script.trimEnd().split('\n')
  assert.match(lines.at(-1)!, /^exec "\$node" /)
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'sdte-launcher-')))
  try {
    mkdirSync(join(dir, 'bin'))
    const copy = join(dir, 'bin', 'sdte')
    writeFileSync(copy, [...lines.slice(0, -1), 'env'].join('\n') + '\n')
    const out = execFileSync('/bin/sh', [copy], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, encoding: 'utf8' })
    return Object.fromEntries(out.split('\n').filter(l => l.includes('=')).map(l => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).replaceAll(dir, ROOT.replace(/\/$/, ''))]))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const PRELOAD = `--import="${STRIP_TYPES}"`

test('bin/sdte sets the daemon\'s process environment where the user did not', () => {
  const env = launcherEnv({})
  for (const [k, v] of Object.entries(DAEMON_PROCESS_ENV)) assert.is(env[k], v, k)
  assert.equal(env.NODE_OPTIONS.split(' '), [...DAEMON_NODE_OPTIONS, PRELOAD])
})

test('bin/sdte keeps what the user set: a variable, a flag of the same name, other flags', () => {
  const [k] = Object.keys(DAEMON_PROCESS_ENV)
  const name = DAEMON_NODE_OPTIONS[0].split('=')[0]
  const env = launcherEnv({ [k]: '999', NODE_OPTIONS: `${name}=7 --trace-warnings` })
  assert.is(env[k], '999')
  assert.is(env.NODE_OPTIONS, `${PRELOAD} ${name}=7 --trace-warnings`)
  assert.equal(launcherEnv({ NODE_OPTIONS: '--trace-warnings' }).NODE_OPTIONS, [...DAEMON_NODE_OPTIONS, PRELOAD, '--trace-warnings'].join(' '))
  // Preloaded once, also when the user's NODE_OPTIONS has it (bin/sdte's copy here is elsewhere: daemonEnv only).
  assert.equal(daemonEnv({ NODE_OPTIONS: PRELOAD }).NODE_OPTIONS, [...DAEMON_NODE_OPTIONS, PRELOAD].join(' '))
})

test('daemonEnv (the tools\' launcher) does what bin/sdte does', () => {
  const cases: Array<Record<string, string>> = [{}, { [Object.keys(DAEMON_PROCESS_ENV)[0]]: '999', NODE_OPTIONS: `${DAEMON_NODE_OPTIONS[0].split('=')[0]}=7 --trace-warnings` }, { NODE_OPTIONS: '--trace-warnings' }]
  for (const user of cases) {
    const ours = daemonEnv(user)
    const script = launcherEnv(user)
    for (const k of [...Object.keys(DAEMON_PROCESS_ENV), 'NODE_OPTIONS']) assert.is(ours[k], script[k], `${k} with ${JSON.stringify(user)}`)
  }
})

test.run()
