// The monitoring server of real daemons on a devnet (anvil + contracts). A trusted node as a separate
// process, started with --metrics on a fixed port and --log-file: /health answers while it starts and
// /ready says not ready until it has started; then ready; /metrics carries libp2p's metrics, Node's and
// every one of ours, and its start's CISC registration moved the chain counters; the health answers
// reveal nothing but a word; with the chain gone /ready turns not ready and /health stays ok. The log
// file (JSON lines, ours and libp2p's) rotates at its small bound. A node in this process shows the
// enclave check: its enclave closed, /ready is not ready.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { devnetDown, devnetUp } from '../../../contracts/tools/index.ts'
import { computeMeasurement } from '../../../enclave/measurement.ts'
import { freePort, startDaemon, waitFor, type DaemonProcess } from '../../helpers/daemon-process.ts'
import { resolveOptions } from '../../../config/options.ts'
import { SdteDaemon } from '../../../daemon/daemon.ts'
import { configureLogging } from '../../../daemon/log.ts'
import { READY_CACHE_MS } from '../../../daemon/monitor.ts'
import type { TrustedNodeRole } from '../../../daemon/roles/trusted-node/index.ts'

// The in-process daemon's lines would only clutter the test output.
configureLogging({ level: 'error' })
const dir = mkdtempSync(join(tmpdir(), 'sdte-metrics-'))
const devnetDir = join(dir, 'devnet')
const networkPath = join(devnetDir, 'network.json')
const logFile = join(dir, 'node', 'logs', 'sdte.log')
const LOG_MAX_BYTES = 4096
const LOG_MAX_FILES = 2
let node: DaemonProcess | undefined
let base = ''

/** Every metric of ours (docs/guide.md, "Metrics"), besides those only a chain or a role makes. */
const OUR_METRICS = [
  'sdte_trades', 'sdte_trade_transitions_total', 'sdte_trade_phase_duration_seconds', 'sdte_data_delivered_bytes_total',
  'sdte_enclave_runs_total', 'sdte_enclave_run_gas_cap', 'sdte_enclave_run_duration_seconds',
  'sdte_chain_transactions_total', 'sdte_chain_gas_used_total', 'sdte_chain_errors_total',
  'sdte_gossip_validation_total', 'sdte_p2p_peers'
]

async function get (url: string, init: RequestInit = {}): Promise<{ status: number, body: string, headers: Headers }> {
  const res = await fetch(url, init)
  return { status: res.status, body: await res.text(), headers: res.headers }
}

/** The metric families of a scrape: name -> its sample lines. */
function families (text: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) \S+$/.exec(line)
    if (type !== null) { out.set(type[1], []); continue }
    if (line === '' || line.startsWith('#')) continue
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0]
    const family = [...out.keys()].find(f => name === f || name.startsWith(f + '_'))
    if (family !== undefined) out.get(family)!.push(line)
  }
  return out
}

function sample (text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find(l => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && labels.split(',').every(p => l.includes(p)))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

test.before(async () => {
  await devnetUp({ dir: devnetDir, measurements: [computeMeasurement()] })
})

test.after(async () => {
  await node?.stop()
  await devnetDown(devnetDir)
  rmSync(dir, { recursive: true, force: true })
})

test('/health answers while the daemon starts and /ready says not ready until it has started; then ready', async () => {
  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  // The default scrypt cost: the keystore made at the first start takes a while, after the monitoring server is up.
  const starting = startDaemon(join(dir, 'node'), {
    args: ['--role', 'node', '--network', networkPath, '--metrics', '--metrics-port', String(port),
      '--log-file', logFile, '--log-max-size', String(LOG_MAX_BYTES), '--log-max-files', String(LOG_MAX_FILES), '--log-format', 'json'],
    env: { SDTE_DEBUG: 'libp2p:*' },
    timeoutMs: 60_000
  })
  starting.catch(() => {})
  const health = await waitFor('/health while starting', async () => {
    const r = await get(`${base}/health`)
    return r.status === 200 ? r : undefined
  }, 30_000, 20)
  assert.is(health.body, 'ok\n')
  const early = await get(`${base}/ready`)
  const startedYet = readFileSync(join(dir, 'node', 'daemon.log'), 'utf8').includes('daemon started')
  assert.not.ok(startedYet, 'the daemon had started before /ready was asked: the test did not see the starting state')
  assert.is(early.status, 503)
  assert.is(early.body, 'not ready\n')

  node = await starting
  assert.match(node.output(), new RegExp(`metrics: +${base}/metrics`))
  const ready = await waitFor('/ready', async () => {
    const r = await get(`${base}/ready`)
    return r.status === 200 ? r : undefined
  }, 60_000, 200) // the node's enclave boot and CISC registration come after the API opens (Role.boot)
  assert.is(ready.body, 'ready\n')
})

test('/metrics: libp2p\'s, Node\'s and all of ours; the node\'s registration in CISC is counted', async () => {
  const r = await get(`${base}/metrics`)
  assert.is(r.status, 200)
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
  const f = families(r.body)
  for (const name of OUR_METRICS) assert.ok(f.has(name), `no ${name} in /metrics`)
  assert.ok(f.has('libp2p_connection_manager_connections'), 'libp2p\'s own metrics')
  assert.ok(f.has('libp2p_data_transfer_bytes_total'))
  assert.ok(f.has('process_cpu_seconds_total') && f.has('nodejs_eventloop_lag_seconds'), 'Node\'s process metrics')
  assert.is(sample(r.body, 'sdte_chain_transactions_total', 'contract="CISC",method="registerNode",outcome="mined"'), 1)
  assert.ok((sample(r.body, 'sdte_chain_gas_used_total', 'contract="CISC",method="registerNode"') ?? 0) > 21_000)
  assert.match(r.body, /^sdte_p2p_peers 0$/m)
  // A trade moves the trade counters (test/e2e/trade.test.ts); this node has none yet.
  assert.is(f.get('sdte_trade_transitions_total')?.length, 0)
})

test('the Grafana dashboard (docs/grafana-dashboard.json) queries only metrics a daemon serves', async () => {
  const body = (await get(`${base}/metrics`)).body
  const served = families(body)
  const dashboard = readFileSync(new URL('../../../docs/grafana-dashboard.json', import.meta.url), 'utf8')
  const queried = new Set([...dashboard.matchAll(/\b((?:sdte|libp2p|process|nodejs)_[a-z0-9_]+)/g)].map(m => m[1]))
  assert.ok(queried.size >= 15, [...queried].join(', '))
  for (const name of queried) {
    const family = name.replace(/_(bucket|count|sum)$/, '')
    assert.ok(served.has(name) || served.has(family), `the dashboard queries ${name}, which /metrics does not serve`)
  }
})

test('/health and /ready reveal nothing else: one word, no version or address; other paths and methods refused', async () => {
  for (const path of ['/health', '/ready', '/ready?verbose=1']) {
    const r = await get(base + path)
    assert.ok(['ok\n', 'ready\n'].includes(r.body), `${path}: ${r.body}`)
    assert.equal([...r.headers.keys()].sort(), ['cache-control', 'connection', 'content-type', 'date', 'keep-alive', 'transfer-encoding'], path)
  }
  assert.is((await get(`${base}/`)).status, 404)
  assert.is((await get(`${base}/admin`)).body, 'not found\n')
  const post = await get(`${base}/ready`, { method: 'POST', body: 'x' })
  assert.is(post.status, 405)
  assert.is(post.headers.get('allow'), 'GET, HEAD')
  // The control API's methods are not reachable here, with or without a token.
  assert.is((await get(`${base}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"admin_info"}' })).status, 405)
})

test('the log file: JSON lines of ours and libp2p\'s, rotated at --log-max-size, at most --log-max-files kept', async () => {
  const logs = join(dir, 'node', 'logs')
  await waitFor('a rotated log file', () => readdirSync(logs).includes('sdte.log.1'), 10_000)
  const files = readdirSync(logs).sort()
  assert.ok(files.every(f => ['sdte.log', 'sdte.log.1', 'sdte.log.2'].includes(f)), files.join(', '))
  const namespaces = new Set<string>()
  for (const f of files) {
    const text = readFileSync(join(logs, f), 'utf8')
    for (const line of text.trim().split('\n')) {
      const o = JSON.parse(line) as Record<string, unknown>
      assert.type(o.time, 'string')
      assert.type(o.msg, 'string')
      namespaces.add(String(o.ns).split(':').slice(0, 2).join(':'))
      // A line longer than the bound goes whole into a file of its own.
      if (statSync(join(logs, f)).size > LOG_MAX_BYTES) assert.is(text.trim().split('\n').length, 1, f)
    }
    assert.is(statSync(join(logs, f)).mode & 0o777, 0o600)
  }
  assert.ok([...namespaces].some(n => n.startsWith('libp2p:')), [...namespaces].join(', '))
})

test('with the chain gone, /ready is not ready and /health still ok', async () => {
  await devnetDown(devnetDir)
  const r = await waitFor('/ready to turn not ready', async () => {
    const r = await get(`${base}/ready`)
    return r.status === 503 ? r : undefined
  }, 10_000, READY_CACHE_MS / 2)
  assert.is(r.body, 'not ready\n')
  assert.is((await get(`${base}/health`)).body, 'ok\n')
  await node?.stop()
  node = undefined
})

test('a node whose enclave is down is not ready (a daemon in this process)', async () => {
  await devnetUp({ dir: devnetDir, measurements: [computeMeasurement()] })
  const options = resolveOptions(join(dir, 'inproc'), {
    roles: ['node'], network: networkPath, keys: { scryptN: 1024 }, metrics: { enabled: true, port: 0 }
  }, {})
  const daemon = new SdteDaemon(options)
  await daemon.start()
  try {
    // The node's enclave boots and it registers after the start returned (admin_info answers first).
    await daemon.booted
    const url = daemon.monitor!.url
    assert.is((await get(`${url}/ready`)).status, 200)
    const role = daemon.roles.find(r => r.name === 'node') as TrustedNodeRole
    await role.enclave.close()
    await new Promise(resolve => setTimeout(resolve, READY_CACHE_MS))
    const r = await get(`${url}/ready`)
    assert.is(r.status, 503)
    assert.is(r.body, 'not ready\n')
    assert.is((await get(`${url}/health`)).status, 200)
  } finally {
    await daemon.stop()
  }
})

test.run()
