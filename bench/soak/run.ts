// Soak under hostile traffic (issue 11 item 6): a local testnet (anvil, relay, one buyer, one seller,
// one node, daemons as processes) runs honest trades first on a quiet network, then for --minutes
// while independent libp2p hosts of this process send mixed hostile traffic at the three daemons:
// malformed frames on every protocol, refused offers to the buyer, unposted demands on the topic,
// free quote requests to the node, idle streams and slow readers (a request sent, the reply never
// read), and low-gas precompile loops: a second buyer daemon (the attacker's, a funded devnet
// account) escrows trade after trade with the same seller and node whose analysis STATICCALLs sort
// with an ABI head claiming 262,144 values and 300 gas, in a loop until the node's gas cap is spent
// (a new such trade every SOAK_LOOP_INTERVAL_MS; the node's log tells how its runs ended).
// Reports the trades completed, their latency against the quiet run, and each daemon's resident
// memory (VmRSS) over time, through a cool-down after the flood.
//
//   node_modules/.bin/node bench/soak/run.ts [--minutes 10] [--trades 20] [--quiet 3] [--out soak.json]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Wallet, hexlify } from 'ethers'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { LocalTestnet, type TestnetDaemon } from '../../daemon/tools/testnet.ts'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { sampleDataset } from '../../enclave/examples.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { attestProtocol, createP2PHost, messageChannel, offerProtocol, signOffer } from '../../p2p/index.ts'
import { DEMAND_TOPIC, decodeDemand, encodeDemand, signDemand, type Demand } from '../../p2p/demand/index.ts'
import { memoryOf, median } from '../trade/daemon.ts'

/** Protocols every daemon may serve: each gets malformed frames and idle streams. */
export const SOAK_PROTOCOLS = ['/sdte/offer/1', '/sdte/attest/1', '/sdte/data/2', '/sdte/result/1']
/** Memory sample period, ms. */
export const SOAK_SAMPLE_MS = 10_000
/** Cool-down after the flood, sampled the same way, ms. */
export const SOAK_COOLDOWN_MS = 90_000
/** Honest trades in flight at once during the flood. */
export const SOAK_TRADE_CONCURRENCY = 3
/** An honest trade not delivered after this long counts as not completed (its state is reported). */
export const SOAK_TRADE_TIMEOUT_MS = 300_000
/** Attacker hosts alive at once; each lives one round and a fresh peer id takes its place. */
export const SOAK_ATTACKERS = 4

/** How often the attacker buyer posts a new loop trade during the flood, ms. */
export const SOAK_LOOP_INTERVAL_MS = 40_000
/** The attacker buyer's analysis gas cap per trade (the node runs its loop until this is spent). */
export const SOAK_LOOP_GAS_CAP = 100_000_000n

/**
 * The low-gas precompile loop, hand-assembled (a contract that does only this needs no compiler):
 * mem[0] = 0x20, mem[32] = 262144 (the ABI head of sort(int256[]) claiming 262,144 values), then
 * forever: STATICCALL(gas 300, 0x0a02, args mem[0..64), no return data); POP. Each call is priced
 * from the head (4 gas a value) before any value is read, so it fails for its 300 gas at once.
 */
export const PRECOMPILE_LOOP_CODE = '0x' +
  '6020600052' + '62040000602052' + // MSTORE(0, 0x20); MSTORE(32, 262144)
  '5b' + '6000600060406000610a0261012cfa50' + '600c56' // 12: JUMPDEST; STATICCALL(300, 0x0a02, 0, 64, 0, 0); POP; JUMP(12)

const TAG = 'soak'
const random32 = (): string => hexlify(randomBytes(32)).toLowerCase()

interface Trade { tradeId: string, ms: number, state: string }

async function stateOf (d: TestnetDaemon, role: string, tradeId: string): Promise<string> {
  const r = (await d.rpc.call<{ records: Array<{ role: string, state: string }> }>('trade_get', { tradeId })).records.find(x => x.role === role)
  return r?.state ?? ''
}

async function honestTrade (net: LocalTestnet): Promise<Trade> {
  const buyer = net.buyers[0]
  const t0 = performance.now()
  // A demand the buyer could not post (its control API timed out on a loaded machine, ...) is a trade
  // not completed, reported with its error; it must not end the soak.
  let tradeId: string
  try {
    ({ tradeId } = await buyer.rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag: TAG, codePath: join(ARTIFACTS_DIR, 'HistogramFast.json'), nodes: 1, sellers: 1,
    sellerPrice: '10', sellerCap: '1000000', nodePrice: '1', nodeCap: '100000000', outputPrice: '5', outputCap: '2048', deadlineSeconds: 600
    }))
  } catch (err) {
    console.error('posting a demand failed:', (err as Error).message)
    return { tradeId: '', ms: performance.now() - t0, state: `not posted (${(err as Error).name})` }
  }
  let state = ''
  await waitFor('the trade to end', async () => {
    state = await stateOf(buyer, 'buyer', tradeId)
    return ['delivered', 'failed', 'refunded'].includes(state)
  }, SOAK_TRADE_TIMEOUT_MS, 250).catch(() => {})
  return { tradeId, ms: performance.now() - t0, state }
}

/**
 * The attacker buyer's trades: a new one every SOAK_LOOP_INTERVAL_MS until the flood ends, without
 * waiting for the earlier ones (each escrows the loop's gas cap); their states are read at the end.
 */
async function precompileLoops (net: LocalTestnet, end: number, counts: Record<string, number>, posted: string[]): Promise<void> {
  const attacker = net.buyers[1]
  while (Date.now() < end) {
    const next = Date.now() + SOAK_LOOP_INTERVAL_MS
    try {
      const { tradeId } = await attacker.rpc.call<{ tradeId: string }>('buyer_postDemand', {
        tag: TAG, code: PRECOMPILE_LOOP_CODE, nodes: 1, sellers: 1,
        sellerPrice: '10', sellerCap: '1000000', nodePrice: '1', nodeCap: String(SOAK_LOOP_GAS_CAP), outputPrice: '5', outputCap: '2048', deadlineSeconds: 600
      })
      posted.push(tradeId)
      counts.loopTrades++
    } catch (err) {
      console.error('posting a loop trade failed:', (err as Error).message)
    }
    if (next > Date.now()) await sleep(Math.min(next, end) - Date.now())
  }
}

/** The states the attacker's trades reached, and what the node's log says of its runs. */
async function loopOutcome (net: LocalTestnet, posted: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const tradeId of posted) {
    const st = `loopTrade_${await stateOf(net.buyers[1], 'buyer', tradeId).catch(() => 'unknown')}`
    out[st] = (out[st] ?? 0) + 1
  }
  const log = readFileSync(join(net.nodes[0].datadir, 'daemon.log'), 'utf8').split('\n')
  const count = (re: RegExp): number => log.filter(l => re.test(l)).length
  out.nodeRunsOutOfGas = count(/analysis ran in the enclave.*"status":2/)
  out.nodeRunsOk = count(/analysis ran in the enclave.*"status":0/)
  out.nodeRunsKilled = count(/run ended without a result/)
  out.nodeTasksGivenUp = count(/gave up the task/)
  return out
}

/** One round of hostile traffic from a fresh host; counts what was sent. */
async function hostileRound (net: LocalTestnet, demands: Demand[], counts: Record<string, number>, signal: AbortSignal): Promise<void> {
  const h = await createP2PHost({ bootstrap: [] }, { privateKey: await generateKeyPair('Ed25519') })
  await h.start()
  const targets = [net.buyers[0], net.sellers[0], net.nodes[0]]
  const held: Array<{ abort: (e: Error) => void }> = []
  try {
    for (const t of targets) await h.connect(t.info.addresses[0]).catch(() => {})
    const peers = targets.map(t => t.info.peerId)
    const jobs: Array<Promise<unknown>> = []
    // Malformed frames on every protocol of every daemon: junk, a huge length prefix, bad JSON.
    for (const peer of peers) {
      for (const proto of SOAK_PROTOCOLS) {
        for (const junk of [randomBytes(200), new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]), new Uint8Array([5, 0x7b, 0x22, 0x61, 0x22, 0x3a])]) {
          jobs.push(h.dialProtocol(peer, proto, { signal }).then(async (s) => {
            s.send(junk)
            await s.close().catch(() => {})
            counts.malformed++
          }, () => {}))
        }
        // An idle stream: opened, never written; the daemon's handler deadline ends it.
        jobs.push(h.dialProtocol(peer, proto, { signal }).then((s) => { held.push(s); counts.idle++ }, () => {}))
      }
    }
    // Slow readers: a well-formed quote request to the node whose reply is never read.
    for (let i = 0; i < 8; i++) {
      jobs.push(h.dialProtocol(net.nodes[0].info.peerId, '/sdte/attest/1', { signal }).then(async (s) => {
        const ch = messageChannel(s)
        await ch.write({ type: 'attest', tradeId: random32(), codeHash: random32(), nonce: random32() })
        await ch.close()
        held.push(s)
        counts.slowReaders++
      }, () => {}))
    }
    // Free quote requests (the node's per-peer quota refuses past 32).
    const attest = attestProtocol(h)
    for (let i = 0; i < 40; i++) {
      jobs.push(attest.attest(net.nodes[0].info.peerId, { tradeId: random32(), codeHash: random32(), nonce: random32() }, { signal }).then(() => { counts.quotes++ }, () => { counts.quotesRefused++ }))
    }
    // Refused offers for the honest demands: signed by random accounts CISC does not know.
    const offers = offerProtocol(h)
    for (const d of demands.slice(-4)) {
      for (let i = 0; i < 25; i++) {
        const w = Wallet.createRandom()
        const offer = signOffer({ type: 'offer', demandId: d.demandId, kind: 'node', account: w.address.toLowerCase(), measurement: random32() },
          { chainId: d.chainId, dtmc: d.dtmc, peerId: h.peerId }, w.privateKey)
        jobs.push(offers.sendOffer(d.buyerPeer, offer, { signal }).then(() => { counts.offers++ }, () => { counts.offers++ }))
      }
    }
    // Unposted demands on the topic (the validators reject them, and the sender's score falls).
    h.subscribe(DEMAND_TOPIC, () => {})
    for (let i = 0; i < 10; i++) {
      const w = Wallet.createRandom()
      const demand = signDemand({
        chainId: net.network.chainId, dtmc: net.network.contracts.DTMC.toLowerCase(), buyerPeer: h.peerId, tag: TAG, codeHash: random32(),
        nodes: 1, sellers: 1, sellerPrice: 20n, sellerCap: 100_000n, nodePrice: 1n, nodeCap: 200_000_000n, outputPrice: 12n, outputCap: 4096n,
        expiresAt: Math.floor(Date.now() / 1000) + 600, tradeSeconds: 600
      }, { address: w.address, privateKey: w.privateKey })
      jobs.push(h.publish(DEMAND_TOPIC, encodeDemand(demand)).then(() => { counts.demands++ }, () => {}))
    }
    await Promise.allSettled(jobs)
    // Hold the idle streams and unread replies for a while, then drop the host.
    await sleep(15_000, undefined, { signal }).catch(() => {})
  } finally {
    for (const s of held) { try { s.abort(new Error('soak round over')) } catch {} }
    await h.stop().catch(() => {})
  }
}

export interface SoakReport {
  minutes: number
  quiet: { trades: number, medianMs: number }
  flood: { trades: number, completed: number, medianMs: number, p90Ms: number, states: Record<string, number> }
  sent: Record<string, number>
  /** Per daemon: [seconds since the flood began, VmRSS MiB]. Negative times: before it; past minutes*60: cool-down. */
  memory: Record<string, Array<[number, number]>>
}

export async function soak (o: { minutes: number, trades: number, quiet: number }): Promise<SoakReport> {
  const dir = mkdtempSync(join(tmpdir(), 'sdte-soak-'))
  // buyers[0] is honest; buyers[1] is the attacker's, sending the precompile loops.
  const net = await LocalTestnet.start({ dir, buyers: 2, sellers: 1, nodes: 1 })
  const daemons: Record<string, TestnetDaemon> = { buyer: net.buyers[0], seller: net.sellers[0], node: net.nodes[0] }
  const memory: SoakReport['memory'] = { buyer: [], seller: [], node: [] }
  let t0 = performance.now()
  const sample = (): void => {
    const t = Math.round((performance.now() - t0) / 1000)
    // A daemon that has exited has no VmRSS: recorded as -1 (and said), not a crash of the sampler.
    for (const [name, d] of Object.entries(daemons)) {
      try {
        memory[name].push([t, Math.round(memoryOf(d.child.pid!).rssKiB / 1024)])
      } catch {
        console.error(`${name} daemon has no memory to sample (exit ${String(d.child.exitCode)}, signal ${String(d.child.signalCode)})`)
        memory[name].push([t, -1])
      }
    }
  }
  try {
    const s = net.sellers[0]
    writeFileSync(join(s.datadir, 'data.csv'), sampleDataset(700, 41))
    await s.rpc.call('seller_addDataset', { path: join(s.datadir, 'data.csv'), tag: TAG, unitPrice: '5', policy: { mode: 'any' } })
    await waitFor('DHT announcement', async () => (await net.buyers[0].rpc.call<unknown[]>('net_findProviders', { key: `sdte:dataset:${TAG}` })).length >= 1, 60_000, 300)

    const quiet: Trade[] = []
    for (let i = 0; i < o.quiet; i++) quiet.push(await honestTrade(net))
    console.error(`quiet: ${quiet.map(t => `${t.state} ${Math.round(t.ms)} ms`).join(', ')}`)

    // The flood: rounds of hostile hosts until the time is up, honest trades alongside.
    const demandWatcher = await createP2PHost({ bootstrap: [net.relay.info.addresses[0]] }, { privateKey: await generateKeyPair('Ed25519') })
    await demandWatcher.start()
    const demands: Demand[] = []
    demandWatcher.subscribe(DEMAND_TOPIC, (m) => { try { demands.push(decodeDemand(m.data).demand) } catch {} })
    const counts: Record<string, number> = { malformed: 0, idle: 0, slowReaders: 0, quotes: 0, quotesRefused: 0, offers: 0, demands: 0, rounds: 0, loopTrades: 0 }
    const stop = new AbortController()
    t0 = performance.now()
    sample()
    const sampler = setInterval(sample, SOAK_SAMPLE_MS)
    const end = Date.now() + o.minutes * 60_000
    const attackers = Array.from({ length: SOAK_ATTACKERS }, async () => {
      while (Date.now() < end) {
        await hostileRound(net, demands, counts, stop.signal).catch((err: unknown) => { console.error('round failed:', (err as Error).message) })
        counts.rounds++
      }
    })
    const loopTrades: string[] = []
    const loops = precompileLoops(net, end, counts, loopTrades)
    const flood: Trade[] = []
    let started = 0
    // Trades spread over the flood: the i-th starts no earlier than i/trades of the way through.
    const floodStart = Date.now()
    const lanes = Array.from({ length: SOAK_TRADE_CONCURRENCY }, async () => {
      while (started < o.trades && Date.now() < end) {
        const due = floodStart + Math.floor(started * o.minutes * 60_000 / o.trades)
        started++
        if (due > Date.now()) await sleep(due - Date.now())
        flood.push(await honestTrade(net))
        console.error(`trade ${flood.length}/${o.trades}: ${flood.at(-1)!.state} ${Math.round(flood.at(-1)!.ms)} ms`)
      }
    })
    await Promise.all(lanes)
    await Promise.all(attackers)
    await loops
    stop.abort()
    await demandWatcher.stop()
    // Cool-down: the memory after the flood.
    await sleep(SOAK_COOLDOWN_MS)
    sample()
    clearInterval(sampler)
    Object.assign(counts, await loopOutcome(net, loopTrades))

    const done = flood.filter(t => t.state === 'delivered')
    const sorted = done.map(t => t.ms).sort((a, b) => a - b)
    const states: Record<string, number> = {}
    for (const t of flood) states[t.state] = (states[t.state] ?? 0) + 1
    return {
      minutes: o.minutes,
      quiet: { trades: quiet.filter(t => t.state === 'delivered').length, medianMs: Math.round(median(quiet.map(t => t.ms))) },
      flood: { trades: flood.length, completed: done.length, medianMs: Math.round(median(sorted)), p90Ms: Math.round(sorted[Math.floor(sorted.length * 0.9)] ?? NaN), states },
      sent: counts,
      memory
    }
  } finally {
    await net.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

function markdown (r: SoakReport): string {
  const lines = [
    `${r.minutes} min of hostile traffic; honest trades: ${r.flood.completed}/${r.flood.trades} delivered (${JSON.stringify(r.flood.states)}), ` +
    `median ${(r.flood.medianMs / 1000).toFixed(1)} s, p90 ${(r.flood.p90Ms / 1000).toFixed(1)} s, against ${(r.quiet.medianMs / 1000).toFixed(1)} s on the quiet network (${r.quiet.trades} trades).`,
    '',
    `Sent: ${Object.entries(r.sent).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
    '',
    '| s since flood began | ' + Object.keys(r.memory).map(k => `${k} MiB`).join(' | ') + ' |',
    '|---|' + Object.keys(r.memory).map(() => '---').join('|') + '|'
  ]
  const names = Object.keys(r.memory)
  for (let i = 0; i < r.memory[names[0]].length; i++) {
    lines.push(`| ${r.memory[names[0]][i][0]} | ` + names.map(n => String(r.memory[n][i]?.[1] ?? '')).join(' | ') + ' |')
  }
  return lines.join('\n')
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, trades: { type: 'string', default: '20' }, quiet: { type: 'string', default: '3' }, out: { type: 'string' } } })
  const r = await soak({ minutes: Number(values.minutes), trades: Number(values.trades), quiet: Number(values.quiet) })
  if (values.out !== undefined) writeFileSync(values.out, JSON.stringify(r, null, 2))
  console.log(markdown(r))
  process.exit(0)
}
