import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultOptions, defaultDatadir, mergeOptions, optionsFromEnv, resolveOptions, resolveOptionsWithSources, validateConfigFile, ConfigError } from '../../../config/options.ts'
import { homedir } from 'node:os'
import { parseNetworkFile, NetworkFileError } from '../../../contracts/network.ts'
import * as P2P from '../../../p2p/constants.ts'
import * as RPC from '../../../config/rpc-defaults.ts'
import * as D from '../../../config/daemon-defaults.ts'

test('defaults: relay role, loopback listen, free rpc port', () => {
  const o = defaultOptions('/x')
  assert.equal(o.roles, ['relay'])
  assert.equal(o.rpc.port, 0)
  assert.equal(o.rpc.host, '127.0.0.1')
  assert.equal(o.p2p.listen, ['/ip4/127.0.0.1/tcp/0'])
})

test('each default is its part\'s constant; the host is not settable; defaults are not shared', () => {
  const o = defaultOptions('/x')
  assert.is(o.p2p.maxConnections, P2P.DEFAULT_MAX_CONNECTIONS)
  assert.equal(o.p2p.listen, P2P.DEFAULT_LISTEN)
  assert.is(o.rpc.maxBodyBytes, RPC.DEFAULT_MAX_BODY_BYTES)
  assert.is(o.rpc.requestTimeoutMs, RPC.DEFAULT_REQUEST_TIMEOUT_MS)
  assert.is(o.keys.scryptN, D.DEFAULT_SCRYPT_N)
  assert.is(o.trade.offerWindowMs, D.DEFAULT_OFFER_WINDOW_MS)
  assert.is(o.shutdownTimeoutMs, D.DEFAULT_SHUTDOWN_TIMEOUT_MS)
  assert.is(o.p2p.mode, D.DEFAULT_P2P_MODE)
  assert.is(o.p2p.relayReservation, P2P.DEFAULT_RELAY_RESERVATION)
  assert.equal(o.p2p.announce, [])
  assert.throws(() => validateConfigFile({ rpc: { host: '0.0.0.0' } }, 'config.json'), /unknown option "rpc.host"/)
  o.p2p.listen.push('/ip4/0.0.0.0/tcp/1')
  assert.equal(defaultOptions('/x').p2p.listen, P2P.DEFAULT_LISTEN)
})

test('every key config.json accepts round-trips through validateConfigFile', () => {
  const raw = {
    roles: ['buyer'], network: 'n.json', shutdownTimeoutMs: 5,
    p2p: { listen: ['/ip4/127.0.0.1/tcp/1'], bootstrap: [], maxConnections: 7, mode: 'public', announce: ['/ip4/8.8.4.4/tcp/4001'], relayReservation: 'never' },
    rpc: { port: 8, maxBodyBytes: 9, maxBatchLength: 10, requestTimeoutMs: 11 },
    keys: { passwordFile: null, scryptN: 2048 },
    log: { level: 'debug', debug: 'sdte:*' },
    trade: { tickMs: 12, offerWindowMs: 13, attestTimeoutMs: 14, nodePricePerGas: '15', nodeMaxGas: '16' },
    enclave: { attestationKeyFile: null, faultWrongResult: true }
  }
  assert.equal(validateConfigFile(raw, 'config.json'), raw)
})

test('merge order: defaults < config.json < env < flags, objects merge field by field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sdte-cfg-'))
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ roles: ['seller'], rpc: { port: 7000, maxBatchLength: 5 }, p2p: { bootstrap: ['/ip4/1.2.3.4/tcp/1'] }, network: 'net.json' }))
    const env = { SDTE_RPC_PORT: '7001', SDTE_ROLE: 'buyer,node' }
    const o = resolveOptions(dir, { rpc: { port: 7002 } }, env)
    assert.equal(o.rpc.port, 7002, 'flag wins over env and file')
    assert.equal(o.rpc.maxBatchLength, 5, 'file field kept where no stronger source sets it')
    assert.equal(o.roles, ['buyer', 'node'], 'env wins over file')
    assert.equal(o.p2p.bootstrap, ['/ip4/1.2.3.4/tcp/1'])
    assert.equal(o.p2p.listen, ['/ip4/127.0.0.1/tcp/0'], 'default kept')
    assert.equal(o.network, join(dir, 'net.json'), 'config.json paths are relative to the datadir')
    const o2 = resolveOptions(dir, {}, {})
    assert.equal(o2.rpc.port, 7000)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('enclave.runBudget: fields given in config.json reach the options, the others keep the enclave\'s defaults', () => {
  const partial = validateConfigFile({ enclave: { runBudget: { minWallMs: 5000, maxHeapMb: 1024 } } }, 'config.json')
  const o = mergeOptions(defaultOptions('/x'), partial)
  assert.equal(o.enclave.runBudget, { minWallMs: 5000, maxHeapMb: 1024 })
  assert.is(o.enclave.faultWrongResult, false)
  assert.equal(defaultOptions('/x').enclave.runBudget, {})
})

test('mergeOptions does not mutate its base', () => {
  const base = defaultOptions('/x')
  mergeOptions(base, { p2p: { maxConnections: 3 } })
  assert.is(base.p2p.maxConnections, 100)
})

test('bad config is refused with the field named', () => {
  const cases: Array<[unknown, RegExp]> = [
    [[], /JSON object/],
    [{ nope: 1 }, /unknown option "nope"/],
    [{ rpc: { port: 70000 } }, /rpc.port/],
    [{ rpc: { hots: 1 } }, /rpc.hots/],
    [{ roles: ['miner'] }, /unknown role "miner"/],
    [{ roles: 'buyer' }, /array of strings/],
    [{ p2p: { listen: [1] } }, /p2p.listen/],
    [{ keys: { scryptN: 1000 } }, /power of two/],
    [{ log: { level: 'loud' } }, /log.level/],
    [{ enclave: { runBudget: { minWallMs: -1 } } }, /enclave.runBudget.minWallMs/],
    [{ enclave: { runBudget: { cpuMs: 5 } } }, /enclave.runBudget.cpuMs is not a run budget field/],
    [{ enclave: { runBudget: 5 } }, /enclave.runBudget must be an object/],
    [{ p2p: { mode: 'internet' } }, /p2p.mode must be one of auto, local, public/],
    [{ p2p: { relayReservation: 'sometimes' } }, /p2p.relayReservation/],
    [{ p2p: { announce: '/ip4/8.8.4.4/tcp/1' } }, /p2p.announce/]
  ]
  for (const [raw, re] of cases) {
    assert.throws(() => validateConfigFile(raw, 'config.json'), (e: Error) => e instanceof ConfigError && re.test(e.message), JSON.stringify(raw))
  }
})

test('malformed config.json is a ConfigError, not a crash', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sdte-cfg-'))
  try {
    writeFileSync(join(dir, 'config.json'), '{ roles: ')
    assert.throws(() => resolveOptions(dir, {}, {}), (e: Error) => e instanceof ConfigError && /not valid JSON/.test(e.message))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('env: SDTE_DEBUG (or DEBUG) namespaces reach the options, flags still win', () => {
  assert.is(optionsFromEnv({ SDTE_DEBUG: 'sdte:p2p' }).log?.debug, 'sdte:p2p')
  assert.is(optionsFromEnv({ DEBUG: 'sdte:*' }).log?.debug, 'sdte:*')
  assert.is(resolveOptions('/tmp/sdte-none', { log: { debug: 'sdte:rpc' } }, { SDTE_DEBUG: 'sdte:p2p', SDTE_LOG: 'warn' }).log.debug, 'sdte:rpc')
  assert.is(resolveOptions('/tmp/sdte-none', {}, { SDTE_DEBUG: 'sdte:p2p', SDTE_LOG: 'warn' }).log.level, 'warn')
})

test('env: bad values are refused', () => {
  assert.throws(() => optionsFromEnv({ SDTE_RPC_PORT: 'x' }), (e: Error) => e instanceof ConfigError)
  assert.throws(() => optionsFromEnv({ SDTE_ROLE: 'king' }), (e: Error) => e instanceof ConfigError)
  assert.throws(() => optionsFromEnv({ SDTE_LOG: 'shout' }), (e: Error) => e instanceof ConfigError)
  assert.throws(() => optionsFromEnv({ SDTE_P2P_MODE: 'lan' }), (e: Error) => e instanceof ConfigError && /SDTE_P2P_MODE/.test(e.message))
  assert.is(optionsFromEnv({ SDTE_P2P_MODE: 'local' }).p2p?.mode, 'local')
  assert.equal(optionsFromEnv({ SDTE_ANNOUNCE: '/ip4/8.8.4.4/tcp/1' }).p2p?.announce, ['/ip4/8.8.4.4/tcp/1'])
  assert.equal(optionsFromEnv({ SDTE_LISTEN: '/ip4/0.0.0.0/tcp/1, /ip4/127.0.0.1/tcp/2' }).p2p?.listen, ['/ip4/0.0.0.0/tcp/1', '/ip4/127.0.0.1/tcp/2'])
})

test('network file: valid one parses, each bad field is named', () => {
  const good = {
    name: 'devnet',
    devnet: true,
    chainId: 31337,
    rpcUrl: 'http://127.0.0.1:8545',
    contracts: { CISC: '0x' + '1'.repeat(40), BDBC: '0x' + '2'.repeat(40), DTMC: '0x' + '3'.repeat(40) },
    attestationRoot: '0x' + '4'.repeat(40),
    measurements: ['0x' + 'A'.repeat(64)],
    bootstrap: [],
    deployBlock: 1
  }
  const n = parseNetworkFile(good)
  assert.is(n.chainId, 31337)
  assert.equal(n.measurements, ['0x' + 'a'.repeat(64)])
  for (const [field, value] of [['chainId', -1], ['rpcUrl', 'ftp://x'], ['attestationRoot', '0x12'], ['measurements', ['0x1']], ['bootstrap', [1]], ['name', '']] as const) {
    assert.throws(() => parseNetworkFile({ ...good, [field]: value }), (e: Error) => e instanceof NetworkFileError && e.message.includes(field), field)
  }
  assert.throws(() => parseNetworkFile({ ...good, contracts: { ...good.contracts, DTMC: 'nope' } }), /contracts.DTMC/)
})

test('resolveOptionsWithSources names where each value came from; the strongest source wins', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sdte-sources-'))
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ roles: ['seller'], p2p: { maxConnections: 7 }, log: { level: 'warn' } }))
    const { options, sources } = resolveOptionsWithSources(dir, { log: { level: 'error' } }, { SDTE_ROLE: 'node', DEBUG: 'a', SDTE_DEBUG: 'b', SDTE_PASSWORD: 'not an option' })
    assert.equal(options.roles, ['node'])
    assert.is(sources.roles, 'env SDTE_ROLE')
    assert.is(sources['p2p.maxConnections'], join(dir, 'config.json'))
    assert.is(options.log.level, 'error')
    assert.is(sources['log.level'], 'flag')
    assert.is(options.log.debug, 'b')
    assert.is(sources['log.debug'], 'env SDTE_DEBUG', 'SDTE_DEBUG wins over DEBUG, and is named')
    assert.is(sources['rpc.port'], 'default')
    assert.not.ok('datadir' in sources, 'the datadir is the command line\'s, not an option with a source here')
    assert.equal(resolveOptions(dir, { log: { level: 'error' } }, { SDTE_ROLE: 'node', DEBUG: 'a', SDTE_DEBUG: 'b' }), options)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the default datadir: $SDTE_DATADIR, else $XDG_DATA_HOME/sdte, else ~/.sdte; never the working directory', () => {
  assert.equal(defaultDatadir({}), { path: join(homedir(), D.HOME_DATADIR_NAME), source: 'default' })
  assert.equal(defaultDatadir({ XDG_DATA_HOME: '/data' }), { path: join('/data', D.XDG_DATADIR_NAME), source: 'env XDG_DATA_HOME' })
  assert.equal(defaultDatadir({ XDG_DATA_HOME: '/data', SDTE_DATADIR: '/d' }), { path: '/d', source: 'env SDTE_DATADIR' })
})

test.run()
