// The command line as an operator meets it: the real bin/sdte run as a process. Help on every command,
// "did you mean", exit codes (0 ok, 1 failure, 2 usage), one-line errors without a stack (a stack only
// with --debug), --version, and init, id, config show, status and stop against a daemon it starts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from '../../helpers/daemon-process.ts'

const ROOT = new URL('../../../', import.meta.url).pathname
const SDTE = join(ROOT, 'bin', 'sdte')
const dir = mkdtempSync(join(tmpdir(), 'sdte-cli-'))
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
/** A stack trace's frame line. */
const STACK = /\n\s+at /

interface Run { code: number | null, stdout: string, stderr: string }

/** bin/sdte with these arguments, from `cwd` (default: a folder of its own, so that nothing lands in the repository). */
async function sdte (args: string[], opts: { env?: Record<string, string | undefined>, cwd?: string } = {}): Promise<Run> {
  const env = { ...process.env, ...opts.env }
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k]
  return await new Promise(resolve => {
    const child = spawn(SDTE, args, { cwd: opts.cwd ?? dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('close', code => resolve({ code, stdout, stderr }))
  })
}

/** A user error: the given exit code, one line on stderr, no stack. */
function oneLineError (r: Run, code: number, message: RegExp): void {
  assert.is(r.code, code, `exit code; stderr: ${r.stderr}`)
  assert.match(r.stderr, message)
  assert.not.match(r.stderr, STACK)
  assert.is(r.stderr.trimEnd().split('\n').length, 1, r.stderr)
}

/** Each command (and subcommand) and flags its help must name: the flags README and docs/guide.md use. */
const HELP: Record<string, string[]> = {
  daemon: ['--datadir', '--role', '--listen', '--bootstrap', '--rpc-port', '--network', '--password-file', '--log-level', '--debug',
    '--log-format', '--log-file', '--log-max-size', '--log-max-files', '--metrics', '--metrics-host', '--metrics-port', '--confirmations'],
  init: ['--datadir', '--role', '--network', '--password-file'],
  id: ['--datadir', '--json'],
  config: ['show'],
  'config show': ['--datadir', '--role', '--json'],
  status: ['--datadir', '--json'],
  stop: ['--datadir'],
  dashboard: ['--datadir'],
  rpc: ['--datadir', '--json', '--read-only', '<method>', '[params]'],
  watch: ['--datadir', '--interval', '--json', '<trade-id>'],
  demo: ['--keep', '--dir', '--analysis', '--plain', '--records', '--nodes'],
  devnet: ['up', 'down', 'status'],
  'devnet up': ['--dir', '--host', '--announce', '--port', '--relay-port', '--no-relay', '--measurement', '--block-time', '--bootstrap', '--json'],
  'devnet down': ['--dir', '--json'],
  'devnet status': ['--dir', '--json'],
  deploy: ['--rpc', '--keystore', '--password-file', '--attestation-root', '--measurement', '--out', '--name', '--bootstrap'],
  version: []
}

test.after(() => {
  rmSync(dir, { recursive: true, force: true })
})

test('--help of every command and subcommand exits 0 and names its flags', async () => {
  const top = await sdte(['--help'])
  assert.is(top.code, 0, top.stderr)
  // Every command the CLI lists is in the table above (a new command gets its help checked too).
  const listed = [...top.stdout.split('Commands:')[1].matchAll(/^ {2}([a-z]+)/gm)].map(m => m[1]).filter(c => c !== 'help')
  assert.equal(listed.sort(), Object.keys(HELP).filter(c => !c.includes(' ')).sort())
  assert.equal((await sdte([])).stdout, top.stdout, 'bare sdte prints the help')
  const runs = await Promise.all(Object.entries(HELP).map(async ([command, flags]) => ({ command, flags, r: await sdte([...command.split(' '), '--help']) })))
  for (const { command, flags, r } of runs) {
    assert.is(r.code, 0, `${command} --help: ${r.stderr}`)
    assert.match(r.stdout, new RegExp(`^Usage: sdte ${command}`), command)
    for (const flag of flags) assert.ok(r.stdout.includes(flag), `${command} --help names ${flag}`)
  }
  const viaHelp = await sdte(['help', 'watch'])
  assert.is(viaHelp.code, 0)
  assert.match(viaHelp.stdout, /--interval/)
})

test('-V/--version and `version` print the version, the commit and Node\'s version', async () => {
  for (const args of [['-V'], ['--version'], ['version']]) {
    const r = await sdte(args)
    assert.is(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`^sdte ${VERSION.replaceAll('.', '\\.')} \\(commit ([0-9a-f]{7,}|unknown), node v\\d+\\.\\d+\\.\\d+\\)\\n$`))
  }
})

test('a typo gets "did you mean" and exit 2', async () => {
  const command = await sdte(['deamon'])
  assert.is(command.code, 2)
  assert.match(command.stderr, /unknown command 'deamon'/)
  assert.match(command.stderr, /Did you mean daemon\?/)
  const option = await sdte(['daemon', '--rol', 'relay'])
  assert.is(option.code, 2)
  assert.match(option.stderr, /Did you mean --role\?/)
  const sub = await sdte(['devnet', 'stauts', '--dir', dir])
  assert.is(sub.code, 2)
  assert.match(sub.stderr, /Did you mean status\?/)
})

test('usage errors: one line, exit 2, nothing made', async () => {
  const d = join(dir, 'usage')
  oneLineError(await sdte(['daemon', '--datadir', d, '--role', 'bogus']), 2, /--role: unknown role "bogus"/)
  oneLineError(await sdte(['daemon', '--datadir', d, '--rpc-port', '99999']), 2, /--rpc-port: port must be an integer/)
  oneLineError(await sdte(['daemon', '--datadir', d, '--log-level', 'loud']), 2, /Allowed choices are error, warn, info, debug, trace/)
  oneLineError(await sdte(['daemon', '--datadir', d, '--log-format', 'xml']), 2, /Allowed choices are human, json/)
  oneLineError(await sdte(['daemon', '--datadir', d, '--log-max-size', '0']), 2, /--log-max-size: expected an integer >= 1/)
  oneLineError(await sdte(['daemon', '--datadir', d, '--metrics', '--metrics-host', 'localhost']), 2, /--metrics-host must be an IP address/)
  oneLineError(await sdte(['daemon', '--datadir', d, '--metrics-port', '70000']), 2, /--metrics-port: port must be an integer/)
  oneLineError(await sdte(['daemon', '--datadir', d, '--confirmations', '0']), 2, /--confirmations: expected an integer >= 1, got "0"/)
  oneLineError(await sdte(['daemon', '--datadir', d, '--confirmations', 'two']), 2, /--confirmations: expected an integer >= 1, got "two"/)
  oneLineError(await sdte(['watch', '--datadir', d, '0x12']), 2, /TRADE-ID must be 0x and 64 hex digits/)
  oneLineError(await sdte(['rpc', '--datadir', d]), 2, /missing required argument 'method'/)
  oneLineError(await sdte(['rpc', '--datadir', d, 'admin_info', '{oops']), 2, /params must be JSON/)
  oneLineError(await sdte(['devnet', 'up']), 2, /required option '--dir <dir>' not specified/)
  assert.not.ok(existsSync(d), 'a usage error made the datadir')
})

test('failures: one line with the fix, exit 1, no stack; no keys made before a start that fails', async () => {
  const d = join(dir, 'failing')
  oneLineError(await sdte(['status', '--datadir', d]), 1, /no daemon running in .*failing \(start one with: sdte daemon --datadir/)
  oneLineError(await sdte(['rpc', '--datadir', d, 'admin_info']), 1, /no daemon API found/)
  oneLineError(await sdte(['id', '--datadir', d]), 1, /no keys in .*: make them with sdte init/)
  const malformed = join(dir, 'malformed.json')
  writeFileSync(malformed, '{"name": "half a file"')
  oneLineError(await sdte(['daemon', '--datadir', d, '--network', malformed]), 1, /malformed\.json: not JSON/)
  oneLineError(await sdte(['daemon', '--datadir', d, '--network', join(dir, 'missing.json')]), 1, /missing\.json: cannot read/)
  oneLineError(await sdte(['daemon', '--datadir', d, '--role', 'seller']), 1, /seller role needs a network: --network FILE/)
  oneLineError(await sdte(['daemon', '--datadir', d, '--listen', '/ip4/not-an-address']), 1, /listen: not a multiaddr: \/ip4\/not-an-address/)
  assert.not.ok(existsSync(d), 'a start that failed on its options made the datadir (and keys)')
  mkdirSync(join(dir, 'badconfig'))
  writeFileSync(join(dir, 'badconfig', 'config.json'), '{"rpc": {"prot": 1}}')
  oneLineError(await sdte(['config', 'show', '--datadir', join(dir, 'badconfig')]), 1, /unknown option "rpc\.prot"/)
  // With --debug, the same failure comes with its stack.
  const debug = await sdte(['status', '--debug', '--datadir', d])
  assert.is(debug.code, 1)
  assert.match(debug.stderr, /DaemonNotRunningError: no daemon running/)
  assert.match(debug.stderr, STACK)
  const json = await sdte(['rpc', '--json', '--datadir', d, 'admin_info'])
  assert.is(json.code, 1)
  assert.is(JSON.parse(json.stdout).error.data.name, 'DaemonNotRunningError')
})

test('the default datadir is ~/.sdte (or $XDG_DATA_HOME/sdte), never the working directory', async () => {
  const home = join(dir, 'home')
  mkdirSync(home)
  const env = { HOME: home, SDTE_DATADIR: undefined, XDG_DATA_HOME: undefined }
  const plain = JSON.parse((await sdte(['config', 'show', '--json'], { env })).stdout)
  assert.equal(plain.datadir, { value: join(home, '.sdte'), source: 'default' })
  const xdg = JSON.parse((await sdte(['config', 'show', '--json'], { env: { ...env, XDG_DATA_HOME: join(home, 'share') } })).stdout)
  assert.equal(xdg.datadir, { value: join(home, 'share', 'sdte'), source: 'env XDG_DATA_HOME' })
  const given = JSON.parse((await sdte(['config', 'show', '--json'], { env: { ...env, SDTE_DATADIR: join(dir, 'by-env') } })).stdout)
  assert.equal(given.datadir, { value: join(dir, 'by-env'), source: 'env SDTE_DATADIR' })
  assert.not.ok(existsSync(join(dir, '.sdte')), 'nothing was made in the working directory')
})

test('init makes keys and config (nothing started); id and config show (with sources); status and stop against the daemon', async () => {
  const d = join(dir, 'node')
  mkdirSync(d, { mode: 0o700 })
  writeFileSync(join(d, 'config.json'), JSON.stringify({ keys: { scryptN: 1024 }, p2p: { maxConnections: 20 } }))
  const init = await sdte(['init', '--datadir', d, '--role', 'relay', '--listen', '/ip4/127.0.0.1/tcp/0', '--rpc-port', '0'])
  assert.is(init.code, 0, init.stderr)
  const peerId = /peer id: +(\S+)/.exec(init.stdout)?.[1]
  const ethAddress = /eth address: +(\S+)/.exec(init.stdout)?.[1]
  assert.ok(peerId !== undefined && ethAddress !== undefined, init.stdout)
  assert.equal(JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')), {
    keys: { scryptN: 1024 }, p2p: { maxConnections: 20, listen: ['/ip4/127.0.0.1/tcp/0'] }, roles: ['relay'], rpc: { port: 0 }
  }, 'the flags were merged into config.json')
  for (const f of ['peer-key', 'keystore.json']) assert.ok(existsSync(join(d, f)), f)
  assert.not.ok(existsSync(join(d, 'api')) || existsSync(join(d, 'daemon.lock')), 'init started nothing')

  const id = await sdte(['id', '--datadir', d, '--json'])
  assert.is(id.code, 0, id.stderr)
  assert.equal(JSON.parse(id.stdout), { peerId, ethAddress })

  const shown = await sdte(['config', 'show', '--datadir', d, '--json', '--log-level', 'warn', '--confirmations', '3'], { env: { SDTE_BOOTSTRAP: '/ip4/127.0.0.1/tcp/9/p2p/' + peerId } })
  assert.is(shown.code, 0, shown.stderr)
  const c = JSON.parse(shown.stdout)
  assert.equal(c.datadir, { value: d, source: 'flag' })
  assert.equal(c.roles, { value: ['relay'], source: join(d, 'config.json') })
  assert.equal(c['p2p.maxConnections'], { value: 20, source: join(d, 'config.json') })
  assert.equal(c['p2p.bootstrap'], { value: ['/ip4/127.0.0.1/tcp/9/p2p/' + peerId], source: 'env SDTE_BOOTSTRAP' })
  assert.equal(c['log.level'], { value: 'warn', source: 'flag' })
  assert.equal(c['trade.tickMs'].source, 'default')
  assert.equal(c['trade.confirmations'], { value: 3, source: 'flag' })
  const text = await sdte(['config', 'show', '--datadir', d])
  assert.match(text.stdout, /^p2p\.maxConnections +20 +\(.*config\.json\)$/m)

  const child = spawn(SDTE, ['daemon', '--datadir', d], { cwd: dir, stdio: 'ignore' })
  const exited = new Promise<number | null>(resolve => child.on('exit', resolve))
  try {
    const status = await waitFor('the daemon to answer', async () => {
      const r = await sdte(['status', '--datadir', d, '--json'])
      return r.code === 0 ? JSON.parse(r.stdout) : undefined
    }, 30_000, 250)
    assert.is(status.running, true)
    assert.is(status.peerId, peerId)
    assert.is(status.pid, child.pid)
    const human = await sdte(['status', '--datadir', d])
    assert.match(human.stdout, new RegExp(`running in ${d} \\(pid ${child.pid}\\)`))
    const stop = await sdte(['stop', '--datadir', d])
    assert.is(stop.code, 0, stop.stderr)
    assert.match(stop.stdout, /stopped/)
    // `stop` returns once the process has exited (this test, its parent, may not have reaped it yet: a zombie).
    const state = (() => { try { const s = readFileSync(`/proc/${child.pid}/stat`, 'utf8'); return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) } catch { return 'gone' } })()
    assert.ok(state === 'gone' || state === 'Z', `the daemon's process is still running (state ${state}) after sdte stop returned`)
    assert.is(await exited, 0, 'the daemon stopped gracefully')
    const after = await sdte(['status', '--datadir', d, '--json'])
    assert.is(after.code, 1)
    assert.is(JSON.parse(after.stdout).running, false)
    oneLineError(await sdte(['stop', '--datadir', d]), 1, /no daemon running/)
  } finally {
    child.kill('SIGKILL')
  }
})

test.run()
