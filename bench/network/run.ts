// Network benchmark (issue 12): a network of daemons, each a separate process in its own network
// namespace (daemon/tools/netns.ts), every connection to a daemon crossing a delaying TCP relay in
// its namespace (the daemon announces the relay's port; this kernel has no netem). One network is
// started (a batch of daemons at a time); then for each one-way delay every relay is set to it
// (NetnsNetwork.setRelayDelay) and the step measured:
//   (a) how long a demand takes to reach 95 % and 100 % of the other daemons: the buyer's "demand
//       gossiped" log line against each daemon's "demand received" (logged once the demand passed the
//       gossip validator, before its roles see it; one machine, one clock);
//   (b) DHT provider lookups of the sellers' dataset tag from other daemons (net_findProviders, timed
//       around the control API call: the first provider, and all of them);
//   (c) one trade with up to 8 sellers and 9 nodes, postDemand to the buyer's record delivered;
//   the resident memory (VmRSS) of every daemon at rest and after each step's trade. A step's
//   failure (a chain request timing out on a loaded machine) is recorded in the results, not fatal.
// Writes a results JSON and prints a Markdown section `## Network`; with --write it replaces that
// section in BENCHMARKS.md. Needs root, ip and nft (netnsUnavailable says why not).
//
//   node bench/network/run.ts [--daemons 50] [--delays 0,20,100] [--batch 5] [--demands 2]
//                             [--lookups 10] [--out FILE] [--write] [--keep DIR] [--debug PATTERN]
//
// --daemons: 1 relay, 1 buyer, min(9, (N-2)/2) nodes, the rest sellers (up to 8 with the dataset);
// --batch: daemons started at once (the machine is shared: a batch at a time, with progress);
// --demands: demands timed per delay (besides the trade's own); --lookups: daemons that look up;
// --debug: SDTE_DEBUG of every daemon (e.g. libp2p:gossipsub), its lines in DIR/net/<name>/daemon.log with --keep.
// A quick check: `node bench/network/run.ts --daemons 8 --delays 0,20`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { execFileSync } from 'node:child_process'
import { LocalTestnet, NetnsNetwork, controlSocket, netnsUnavailable, waitFor, type TestnetDaemon } from '../../daemon/tools/index.ts'
import { sampleDataset } from '../../enclave/examples.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { datasetKey } from '../../p2p/dht-keys.ts'
import { ChainClient } from '../../contracts/index.ts'
import { memoryOf, median } from '../trade/daemon.ts'
import { writeBenchmarkSections } from '../benchmarks-md.ts'

const { values: flags } = parseArgs({
  options: {
    daemons: { type: 'string', default: '50' },
    delays: { type: 'string', default: '0,20,100' },
    batch: { type: 'string', default: '5' },
    demands: { type: 'string', default: '2' },
    lookups: { type: 'string', default: '10' },
    out: { type: 'string' },
    write: { type: 'boolean', default: false },
    keep: { type: 'string' },
    debug: { type: 'string' }
  }
})
const int = (name: string, v: string, min: number, max: number): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer ${min}..${max}`)
  return n
}
/** netns.ts holds at most 100 public hosts; 4 is a relay, a buyer, a node and a seller. */
const DAEMONS = int('daemons', flags.daemons, 4, 100)
const DELAYS = flags.delays.split(',').map(d => int('delays', d, 0, 1000))
const BATCH = int('batch', flags.batch, 1, 50)
const DEMANDS = int('demands', flags.demands, 1, 8)
const LOOKUPS = int('lookups', flags.lookups, 1, 100)

const P2P_PORT = 4001
/** The delaying relay's port on each host: what its daemon announces. */
const PUBLIC_PORT = 4002
/** Every daemon's control API port on its namespace's loopback (one daemon a namespace), so that the relay carrying it out starts with the delaying one, one process a host. */
const RPC_PORT = 7545
const NODES = Math.min(9, Math.floor((DAEMONS - 2) / 2))
const SELLERS = DAEMONS - 2 - NODES
const DATA_SELLERS = Math.min(8, SELLERS)
const TAG = 'bench-net'
/** A tag nobody lists: the timed demands lead to no trade (the nodes still offer, as for any demand). */
const EMPTY_TAG = 'bench-net-none'
/** After the last daemon started: DHT refreshes and gossip heartbeats form the mesh. */
const SETTLE_MS = 15_000
/** A demand not seen by a daemon within this is counted as not reaching it. */
const DEMAND_WAIT_MS = 30_000
/** Pause between timed demands (MAX_DEMANDS_PER_BUYER is 10 a minute: 2 demands and a trade a step stay under it). */
const DEMAND_GAP_MS = 2_000
const TRADE_TIMEOUT_MS = 10 * 60_000
/** One daemon's start-up: loading its modules took 50 s on this machine at a load average of 36. */
const START_TIMEOUT_MS = 180_000
const GOAL_MS = 1000
/** Starts of one daemon before the bench gives up (addDaemon). */
const START_ATTEMPTS = 2
const TRADE_TERMS = { unitPrice: '10', sellerPrice: '20', sellerCap: '500000', nodePrice: '1', nodeCap: '200000000', outputPrice: '12', outputCap: '4096', deadlineSeconds: 600 }

const say = (msg: string): void => { process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }
const uptime = (): string => execFileSync('uptime').toString().trim()

const why = netnsUnavailable()
if (why !== null) {
  process.stderr.write(`bench/network/run.ts cannot run here: ${why}\n`)
  process.exit(1)
}

interface Summary { n: number, min: number, median: number, p95: number, max: number }
function summary (xs: number[]): Summary | null {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  return { n: s.length, min: s[0], median: median(s), p95: s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)], max: s[s.length - 1] }
}

interface DemandReach {
  demandId: string
  /** Daemons other than the buyer, and how many logged the demand within DEMAND_WAIT_MS. */
  of: number
  reached: number
  /** ms after the buyer gossiped it, sorted; one per daemon that had it. */
  ms: number[]
  p95Ms: number | null
  p100Ms: number | null
}


interface DelayRun {
  delayMs: number
  peers: Summary | null
  demands: DemandReach[]
  dht: { firstMs: Summary | null, allMs: Summary | null, allFound: number[], rpcRoundTripMs: number } | null
  /** The demand validator's BDBC read (the query it makes), from here: alone, and as many at once as daemons got each demand. */
  chainRead: { aloneMs: number, concurrentMs: Summary | null } | null
  trade: { sellers: number, nodes: number, state: string, verified: boolean, seconds: number, reason?: string, demand: DemandReach | null } | null
  /** What failed in this step (the machine is shared: a chain request may time out), if anything. */
  errors: string[]
  memoryAfter: Record<string, number[]>
  uptime: string
}

interface NetworkRun {
  startSeconds: number
  memoryAtRest: Record<string, number[]>
  runs: DelayRun[]
}

/** `<iso time> <level> <ns> <msg> <json>` lines of one daemon's log with this message. */
function logTimes (d: TestnetDaemon, msg: string): Array<{ t: number, ctx: Record<string, unknown> }> {
  const out: Array<{ t: number, ctx: Record<string, unknown> }> = []
  for (const line of d.output().split('\n')) {
    const i = line.indexOf(` ${msg} {`)
    if (i < 0) continue
    try { out.push({ t: Date.parse(line.slice(0, line.indexOf(' '))), ctx: JSON.parse(line.slice(i + msg.length + 2)) }) } catch {}
  }
  return out
}

/** Waits for the buyer's "demand gossiped" after `before` lines, then for every other daemon's "demand received". */
async function demandReach (net: LocalTestnet, before: number): Promise<DemandReach> {
  const buyer = net.buyers[0]
  const gossiped = await waitFor('the buyer to gossip its demand', () => logTimes(buyer, 'demand gossiped')[before], 120_000, 50)
  const demandId = gossiped.ctx.demandId as string
  const others = net.daemons.filter(d => d !== buyer)
  const seen = (): Map<string, number> => {
    const m = new Map<string, number>()
    for (const d of others) {
      const hit = logTimes(d, 'demand received').find(x => x.ctx.demandId === demandId)
      if (hit !== undefined) m.set(d.name, hit.t - gossiped.t)
    }
    return m
  }
  let got = seen()
  const deadline = Date.now() + DEMAND_WAIT_MS
  while (got.size < others.length && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 250))
    got = seen()
  }
  const ms = [...got.values()].sort((a, b) => a - b)
  const need95 = Math.ceil(0.95 * others.length)
  return { demandId, of: others.length, reached: ms.length, ms, p95Ms: ms.length >= need95 ? ms[need95 - 1] : null, p100Ms: ms.length === others.length ? ms[ms.length - 1] : null }
}

async function postDemand (buyer: TestnetDaemon, tag: string, nodes: number, sellers: number): Promise<string> {
  const { tradeId } = await buyer.rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag, codePath: join(ARTIFACTS_DIR, 'StatsFast.json'), nodes, sellers,
    sellerPrice: TRADE_TERMS.sellerPrice, sellerCap: TRADE_TERMS.sellerCap, nodePrice: TRADE_TERMS.nodePrice, nodeCap: TRADE_TERMS.nodeCap,
    outputPrice: TRADE_TERMS.outputPrice, outputCap: TRADE_TERMS.outputCap, deadlineSeconds: TRADE_TERMS.deadlineSeconds
  })
  return tradeId
}

const mib = (kib: number): number => Math.round(kib / 1024)
function memoryByRole (net: LocalTestnet): Record<string, number[]> {
  const m: Record<string, number[]> = {}
  for (const d of net.daemons) {
    if (d.child.pid === undefined) continue
    try { (m[d.role] ??= []).push(mib(memoryOf(d.child.pid).rssKiB)) } catch {}
  }
  return m
}

async function runNetwork (root: string): Promise<NetworkRun> {
  const dir = join(root, 'net')
  mkdirSync(dir, { recursive: true })
  const delayFile = join(root, 'delay-ms')
  const names = ['relay', 'buyer1', ...Array.from({ length: NODES }, (_, i) => `node${i + 1}`), ...Array.from({ length: SELLERS }, (_, i) => `seller${i + 1}`)]
  const t0 = Date.now()
  say(`${names.length} namespaces`)
  const hosts = await NetnsNetwork.create({ hosts: names.map(name => ({ name })) })
  let net: LocalTestnet | undefined
  try {
    // One relay process a host: the delaying relay in front of its daemon (peers told apart by
    // address, mirrorSources; its delay set from delayFile for each step) and the one carrying its
    // control API out of the namespace.
    for (let i = 0; i < names.length; i += 10) {
      await Promise.all(names.slice(i, i + 10).map(async name => {
        const ip = hosts.host(name).ip
        mkdirSync(join(dir, name), { recursive: true, mode: 0o700 })
        await hosts.relays(name, [
          { listen: `${ip}:${PUBLIC_PORT}`, target: `${ip}:${P2P_PORT}`, delayMs: DELAYS[0], delayFile, mirrorSources: true },
          { listen: controlSocket(join(dir, name)), target: `127.0.0.1:${RPC_PORT}` }
        ])
      }))
    }
    say('relays up; devnet and the relay daemon')
    // --debug: libp2p/sdte namespaces every daemon logs at debug (SDTE_DEBUG), to see what closes streams.
    const env = { SDTE_RPC_PORT: String(RPC_PORT), ...(flags.debug !== undefined && { SDTE_DEBUG: flags.debug }) }
    const o = { config: { p2p: { mode: 'public' } }, env, startTimeoutMs: START_TIMEOUT_MS }
    net = await LocalTestnet.start({
      dir,
      buyers: 0,
      sellers: 0,
      nodes: 0,
      chainHost: hosts.chainHost,
      ...o,
      place: hosts.placeDaemons({ hostOf: name => name, p2pPort: P2P_PORT, announcePort: () => PUBLIC_PORT, socketRelayed: true })
    })
    const rest = names.slice(1)
    const roleOf = (name: string): TestnetDaemon['role'] => name.startsWith('buyer') ? 'buyer' : name.startsWith('node') ? 'node' : 'seller'
    for (let i = 0; i < rest.length; i += BATCH) {
      const batch = rest.slice(i, i + BATCH)
      await Promise.all(batch.map(async name => await addDaemon(net!, name, roleOf(name), o)))
      say(`${net.daemons.length}/${names.length} daemons started`)
    }
    const startSeconds = (Date.now() - t0) / 1000
    say(`all started in ${startSeconds.toFixed(0)} s; settling ${SETTLE_MS / 1000} s`)
    await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
    const memoryAtRest = memoryByRole(net)
    const buyer = net.buyers[0]

    // The sellers list a dataset each, once.
    const datasets = Array.from({ length: DATA_SELLERS }, (_, i) => sampleDataset(1200, 100 + i))
    const sellers = net.sellers.slice(0, DATA_SELLERS)
    await Promise.all(sellers.map(async (s, i) => {
      const path = join(s.datadir, 'data.csv')
      writeFileSync(path, datasets[i])
      await s.rpc.call('seller_addDataset', { path, tag: TAG, unitPrice: TRADE_TERMS.unitPrice, policy: { mode: 'any' } })
    }))
    // seller_addDataset announces in the background: wait for the buyer to see every seller (bounded).
    await waitFor('every seller in the DHT', async () => (await buyer.rpc.call<unknown[]>('net_findProviders', { key: datasetKey(TAG), limit: DATA_SELLERS })).length >= DATA_SELLERS, 120_000, 500)

    const runs: DelayRun[] = []
    for (const delayMs of DELAYS) {
      await hosts.setRelayDelay(delayFile, delayMs)
      say(`${delayMs} ms: every relay delays by ${delayMs} ms`)
      runs.push(await measure(net, delayMs, sellers))
    }
    return { startSeconds, memoryAtRest, runs }
  } finally {
    say('stopping')
    await net?.stop()
    await hosts.destroy()
  }
}

/**
 * Starts a daemon, once more on its datadir if it exited while starting: a daemon's first chain
 * request may time out (two 50-daemon runs stopped so, at the 37th and 48th, on a loaded machine; a
 * third, at the 42nd-46th, failed again on the second start: BENCHMARKS.md, Network).
 */
async function addDaemon (net: LocalTestnet, name: string, role: TestnetDaemon['role'], o: Parameters<LocalTestnet['add']>[3]): Promise<TestnetDaemon> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await net.add(name, role, {}, o)
    } catch (err) {
      if (attempt >= START_ATTEMPTS) throw err
      say(`${name} did not start (${(err as Error).message.split('\n').at(-2) ?? ''}); starting it again`)
    }
  }
}

/** One step at the relays' current delay: peers, DHT lookups, demands, the chain read, a trade, memory. */
async function measure (net: LocalTestnet, delayMs: number, sellers: TestnetDaemon[]): Promise<DelayRun> {
  const buyer = net.buyers[0]
  const errors: string[] = []
  const attempt = async <T>(what: string, fn: () => Promise<T>): Promise<T | null> => {
    try {
      return await fn()
    } catch (err) {
      errors.push(`${what}: ${(err as Error).message}`)
      say(`${delayMs} ms: ${what} failed: ${(err as Error).message}`)
      return null
    }
  }
  const peerCounts = (await Promise.all(net.daemons.map(async d => await attempt('admin_peers', async () => (await d.rpc.call<unknown[]>('admin_peers')).length)))).filter(n => n !== null)

  // (b) other daemons look the tag up.
  const dht = await attempt('DHT lookups', async () => {
    const lookers = net.daemons.filter(d => !sellers.includes(d) && d !== buyer).slice(0, LOOKUPS)
    const firstMs: number[] = []
    const allMs: number[] = []
    const allFound: number[] = []
    const rtt: number[] = []
    for (const d of lookers) {
      let t = performance.now()
      await d.rpc.call('admin_peers')
      rtt.push(performance.now() - t)
      t = performance.now()
      const first = await d.rpc.call<unknown[]>('net_findProviders', { key: datasetKey(TAG), limit: 1 })
      if (first.length > 0) firstMs.push(performance.now() - t)
      t = performance.now()
      const all = await d.rpc.call<unknown[]>('net_findProviders', { key: datasetKey(TAG), limit: DATA_SELLERS })
      allMs.push(performance.now() - t)
      allFound.push(all.length)
    }
    say(`${delayMs} ms: ${lookers.length} DHT lookups, first provider median ${median(firstMs).toFixed(0)} ms`)
    return { firstMs: summary(firstMs), allMs: summary(allMs), allFound, rpcRoundTripMs: median(rtt) }
  })

  // (a) demands for a tag nobody lists.
  const demands: DemandReach[] = []
  for (let i = 0; i < DEMANDS; i++) {
    const r = await attempt(`demand ${i + 1}`, async () => {
      const before = logTimes(buyer, 'demand gossiped').length
      await postDemand(buyer, EMPTY_TAG, 1, 1)
      return await demandReach(net, before)
    })
    if (r !== null) {
      demands.push(r)
      say(`${delayMs} ms: demand ${i + 1}: ${r.reached}/${r.of} daemons, 95 % at ${r.p95Ms ?? '–'} ms, 100 % at ${r.p100Ms ?? '–'} ms`)
    }
    await new Promise(resolve => setTimeout(resolve, DEMAND_GAP_MS))
  }

  // What each daemon's demand validator does before it forwards the demand: one BDBC read (the
  // DemandPosted query), each daemon with its own provider. Alone, then all at once.
  const chainRead = await attempt('BDBC reads', async () => {
    const clients = await Promise.all(net.daemons.slice(1).map(async () => await ChainClient.connect({ network: net.network, skipChecks: true })))
    try {
      const read = async (c: ChainClient): Promise<number> => {
        const t = performance.now()
        await c.bdbc.demands({ buyer: buyer.info.ethAddress, demandHash: '0x' + '11'.repeat(32), fromBlock: net.network.deployBlock })
        return performance.now() - t
      }
      const alone = [] as number[]
      for (let i = 0; i < 5; i++) alone.push(await read(clients[0]))
      const concurrent = await Promise.all(clients.map(read))
      const r = { aloneMs: median(alone), concurrentMs: summary(concurrent) }
      say(`${delayMs} ms: BDBC read alone ${r.aloneMs.toFixed(0)} ms, ${clients.length} at once median ${r.concurrentMs?.median.toFixed(0)} ms`)
      return r
    } finally {
      for (const c of clients) c.close()
    }
  })

  // (c) one trade with the sellers of the dataset and up to 9 nodes.
  const trade = await attempt('trade', async () => {
    const before = logTimes(buyer, 'demand gossiped').length
    const tt = performance.now()
    const tradeId = await postDemand(buyer, TAG, NODES, DATA_SELLERS)
    const reachOfTrade = demandReach(net, before).catch(() => null)
    const view = await waitFor('the trade to end', async () => {
      const v = await buyer.rpc.call<{ records: Array<{ state: string, reason?: string }> }>('trade_get', { tradeId })
      return ['delivered', 'refunded', 'failed'].includes(v.records[0].state) ? v : undefined
    }, TRADE_TIMEOUT_MS, 200)
    const seconds = (performance.now() - tt) / 1000
    const rec = view.records[0]
    const verified = rec.state === 'delivered' && (await buyer.rpc.call<{ verified: boolean }>('buyer_result', { tradeId })).verified
    say(`${delayMs} ms: trade ${rec.state} in ${seconds.toFixed(1)} s${rec.reason !== undefined ? ` (${rec.reason})` : ''}`)
    return { sellers: DATA_SELLERS, nodes: NODES, state: rec.state, verified, seconds, ...(rec.reason !== undefined && { reason: rec.reason }), demand: await reachOfTrade }
  })
  return { delayMs, peers: summary(peerCounts), demands, dht, chainRead, trade, errors, memoryAfter: memoryByRole(net), uptime: uptime() }
}

const root = flags.keep ?? mkdtempSync(join(tmpdir(), 'sdte-netbench-'))
const commit = (() => { try { return execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim() } catch { return 'unknown' } })()
const command = `node bench/network/run.ts --daemons ${DAEMONS} --delays ${DELAYS.join(',')} --batch ${BATCH} --demands ${DEMANDS} --lookups ${LOOKUPS}`
const machine = `${cpus()[0]?.model.trim() ?? 'unknown CPU'} (${cpus().length} cores), ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.versions.node}`
const uptimeAtStart = uptime()
say(`${command}; ${uptimeAtStart}`)
let network: NetworkRun
try {
  network = await runNetwork(root)
} finally {
  if (flags.keep === undefined) rmSync(root, { recursive: true, force: true })
}
const runs = network.runs

const results = { command, machine, commit, date: new Date().toISOString(), uptimeAtStart, loadavgAtEnd: loadavg(), daemons: DAEMONS, roles: { relay: 1, buyer: 1, node: NODES, seller: SELLERS, sellersWithData: DATA_SELLERS }, ...network }
const out = flags.out ?? join('bench', 'network', `results-${DAEMONS}.json`)
writeFileSync(out, JSON.stringify(results, null, 2) + '\n')
say(`results in ${out}`)

// The Markdown section.
const base = runs.find(r => r.delayMs === 0)
const ratio = (v: number | null | undefined, b: number | null | undefined): string => v != null && b != null && b > 0 ? `${(v / b).toFixed(1)}×` : '–'
const ms = (v: number | null | undefined): string => v == null ? '–' : Math.round(v).toLocaleString('en')
const medianOf = (xs: Array<number | null>): number | null => xs.some(x => x === null) || xs.length === 0 ? null : median(xs as number[])
const reach = (r: DelayRun, k: 'p95Ms' | 'p100Ms'): number | null => medianOf(r.demands.map(d => d[k]))
const lines = [
  '## Network',
  '',
  `Command: \`${command}\` (commit ${commit}), ${machine}. Load (\`uptime\`): at the start ${uptimeAtStart.replace(/^.*load average: /, '')}; after each step ${runs.map(r => `${r.delayMs} ms: ${r.uptime.replace(/^.*load average: /, '')}`).join('; ')}.`,
  `${DAEMONS} daemons (1 relay as bootstrap, 1 buyer, ${NODES} trusted nodes, ${SELLERS} sellers of which ${DATA_SELLERS} list the dataset), each a process in its own network namespace`,
  'with its own address (daemon/tools/netns.ts), mode public; every connection to a daemon crosses a delaying TCP relay in its namespace (tcp-relay.ts; the daemon',
  'announces the relay\'s port), which holds each chunk for the one-way delay in each direction and connects to the daemon from an address that mirrors the',
  `remote host's (so a daemon tells its peers apart by address, as without the relay). One network, started ${BATCH} daemons at a time (${network.startSeconds.toFixed(0)} s),`,
  `measured ${SETTLE_MS / 1000} s after the last started; then for each delay in turn every relay is set to it and the step measured.`,
  '',
  `Demand: ms from the buyer's \`demand gossiped\` log line to each other daemon's \`demand received\` (logged once the gossip validator accepted it, which reads BDBC on the chain); median over ${DEMANDS} demands (each below). DHT: \`net_findProviders\` from ${LOOKUPS} daemons that are neither the buyer nor a listing seller, timed around the control API call (round trip of a plain call: RPC ms), for the first provider and for all ${DATA_SELLERS}. BDBC read: the query each daemon's demand validator makes before it forwards a demand, timed from here, alone (median of 5) and ${DAEMONS - 1} at once, each with its own provider (median). Trade: \`buyer_postDemand\` to the buyer's record \`delivered\`, ${DATA_SELLERS} sellers and ${NODES} nodes, 1,200 records each.`,
  '',
  '| one-way delay ms | peers median (min) | demand 95 % ms | ×0 ms | demand 100 % ms | ×0 ms | DHT first provider median / p95 ms | ×0 ms | DHT all providers median ms | trade s | ×0 ms | trade | RPC ms | BDBC read alone / all at once ms |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|'
]
for (const r of runs) {
  lines.push(`| ${r.delayMs} | ${r.peers?.median ?? '–'} (${r.peers?.min ?? '–'}) | ${ms(reach(r, 'p95Ms'))} | ${ratio(reach(r, 'p95Ms'), base && reach(base, 'p95Ms'))} | ${ms(reach(r, 'p100Ms'))} | ${ratio(reach(r, 'p100Ms'), base && reach(base, 'p100Ms'))} | ${ms(r.dht?.firstMs?.median)} / ${ms(r.dht?.firstMs?.p95)} | ${ratio(r.dht?.firstMs?.median, base?.dht?.firstMs?.median)} | ${ms(r.dht?.allMs?.median)} | ${r.trade === null ? '–' : r.trade.seconds.toFixed(1)} | ${ratio(r.trade?.seconds, base?.trade?.seconds)} | ${r.trade === null ? 'failed to run' : `${r.trade.state}${r.trade.verified ? ', verified' : ''}`} | ${ms(r.dht?.rpcRoundTripMs)} | ${ms(r.chainRead?.aloneMs)} / ${ms(r.chainRead?.concurrentMs?.median)} |`)
}
lines.push('', 'Each demand (ms to 95 % / 100 % of the other daemons; – when it did not reach them within 30 s):', '')
for (const r of runs) lines.push(`- ${r.delayMs} ms: ${[...r.demands, ...(r.trade?.demand != null ? [r.trade.demand] : [])].map(d => `${ms(d.p95Ms)} / ${ms(d.p100Ms)} (${d.reached}/${d.of})`).join('; ')}${r.trade?.demand != null ? ' (the last is the trade\'s)' : ''}${r.errors.length > 0 ? `; failed: ${r.errors.join('; ')}` : ''}`)
lines.push('', 'Resident memory per daemon, MiB (VmRSS; median and max by role): at rest (after start-up and the settle), and after each step\'s trade:', '')
const roles = Object.keys(network.memoryAtRest)
const cell = (xs: number[] | undefined): string => xs === undefined || xs.length === 0 ? '–' : `${median(xs)} / ${Math.max(...xs)}`
lines.push(`| role | daemons | at rest | ${runs.map(r => `after ${r.delayMs} ms`).join(' | ')} |`, `|---|---:|---:|${runs.map(() => '---:').join('|')}|`)
for (const role of roles) lines.push(`| ${role} | ${network.memoryAtRest[role].length} | ${cell(network.memoryAtRest[role])} | ${runs.map(r => cell(r.memoryAfter[role])).join(' | ')} |`)
const at20 = runs.find(r => r.delayMs === 20)
if (at20 !== undefined) {
  const p95 = reach(at20, 'p95Ms')
  lines.push('', `Goal of issue 12, 95 % of daemons have a demand within ${GOAL_MS} ms on 20 ms links: ${p95 !== null && p95 <= GOAL_MS ? `**holds** (${ms(p95)} ms)` : `**does not hold** (${ms(p95)} ms)`}.`)
}
const section = lines.join('\n') + '\n'
process.stdout.write(section)
if (flags.write) writeBenchmarkSections([section])
