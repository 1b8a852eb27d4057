// The daemon's footprint, on its own (issue 13, a lighter daemon): start-up to admin_info per role
// against `node -e 0` and against importing daemon/daemon.ts; the resident memory of every daemon of a
// local testnet right after its start and at rest (once a node's idle enclave thread stopped: ENCLAVE_IDLE_STOP_MS);
// and a node's memory right after one 64 MiB trade and FOOTPRINT_AFTER_MS later.
// Quicker than bench/trade/run.ts (one trade, not the matrix), so that a change can be measured
// against a baseline of the same run (the same script at the commit before it).
//
//   node bench/trade/footprint.ts [--nodes N] [--mib M] [--runs R] [--after-ms MS] [--keep DIR]
//
// Prints one JSON object (the figures) on stdout; progress on stderr.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { getBytes } from 'ethers'
import { sampleDataset, referenceOutput } from '../../enclave/examples.ts'
import { DEFAULT_GAS_CAP } from '../../enclave/constants.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { datasetKey, enclaveKey } from '../../p2p/dht-keys.ts'
import { LocalTestnet } from '../../daemon/tools/testnet.ts'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { ENCLAVE_IDLE_STOP_MS } from '../../daemon/roles/trusted-node/index.ts'
import { baselineStartup, measureStartup, median, memoryOf } from './daemon.ts'

/** How long the daemons sit idle after the trade before the last memory reading (the "a minute after"). */
export const FOOTPRINT_AFTER_MS = 60_000
/** Let a freshly started testnet settle (DHT refreshes, first gossip heartbeats) before the resting reading. */
const SETTLE_MS = 3000
/** The resting reading: past the node's enclave idle stop (it stops its thread when it holds no task for that long). */
const REST_MS = ENCLAVE_IDLE_STOP_MS + 5000
const MiB = 1024 * 1024

const { values: flags } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1' },
    mib: { type: 'string', default: '64' },
    runs: { type: 'string', default: '5' },
    'after-ms': { type: 'string', default: String(FOOTPRINT_AFTER_MS) },
    keep: { type: 'string' }
  }
})
const NODES = Number(flags.nodes)
const BYTES = Number(flags.mib) * MiB
const RUNS = Number(flags.runs)
const AFTER_MS = Number(flags['after-ms'])

const say = (msg: string): void => { process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }
const mib = (kib: number): number => Math.round(kib / 1024)

async function main (): Promise<void> {
  const load = loadavg()[0]
  const dir = flags.keep !== undefined ? resolve(flags.keep) : mkdtempSync(join(tmpdir(), 'sdte-bench-footprint-'))
  mkdirSync(dir, { recursive: true })
  const out: Record<string, unknown> = { load, nodes: NODES, mib: BYTES / MiB, afterMs: AFTER_MS }

  say('baselines: node -e 0, import daemon/daemon.ts')
  const baseline = await baselineStartup(RUNS)
  out.nodeMs = Math.round(median(baseline.nodeMs))
  out.importDaemonMs = Math.round(median(baseline.moduleLoadMs))

  say(`starting a local testnet in ${dir}: devnet, relay, 1 buyer, 1 seller, ${NODES} node(s)`)
  const net = await LocalTestnet.start({ dir, buyers: 1, sellers: 1, nodes: NODES })
  try {
    await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
    out.startedMiB = Object.fromEntries(net.daemons.map(d => [d.name, mib(memoryOf(d.child.pid!).rssKiB)]))
    say(`waiting ${REST_MS - SETTLE_MS} ms more for the resting reading`)
    await new Promise(resolve => setTimeout(resolve, REST_MS - SETTLE_MS))
    out.restMiB = Object.fromEntries(net.daemons.map(d => [d.name, mib(memoryOf(d.child.pid!).rssKiB)]))
    say(`  started: ${JSON.stringify(out.startedMiB)}; at rest: ${JSON.stringify(out.restMiB)}`)

    say('start-up of idle daemons')
    const bootstrap = net.relay.info.addresses[0]
    const startup: Record<string, unknown> = {}
    for (const role of ['relay', 'buyer', 'seller', 'node'] as const) {
      const f = await measureStartup({ dir, role, networkPath: net.networkPath, bootstrap, runs: RUNS })
      startup[role] = { firstMs: Math.round(f.firstMs), medianMs: Math.round(median(f.restartsMs)), idleMiB: mib(f.idle.rssKiB) }
      say(`  ${role}: ${JSON.stringify(startup[role])}`)
    }
    out.startup = startup

    if (BYTES > 0) {
      say(`a ${BYTES / MiB} MiB trade on ${NODES} node(s)`)
      const buyer = net.buyers[0]
      const seller = net.sellers[0]
      const probe = sampleDataset(1000, 3)
      let records = Math.max(1, Math.round(BYTES / (probe.length / 1000)))
      let data = sampleDataset(records, 3)
      records = Math.max(1, Math.round(records * BYTES / data.length))
      data = sampleDataset(records, 3)
      const expected = referenceOutput('Stats', [data])
      const path = join(dir, 'footprint.csv')
      writeFileSync(path, data)
      const tag = 'footprint'
      await seller.rpc.call('seller_addDataset', { path, tag, unitPrice: '1', policy: { mode: 'any' } })
      data = new Uint8Array(0)
      await waitFor('DHT announcements', async () => {
        if ((await buyer.rpc.call<unknown[]>('net_findProviders', { key: datasetKey(tag) })).length < 1) return false
        return (await buyer.rpc.call<unknown[]>('net_findProviders', { key: enclaveKey(net.network.measurements[0]) })).length >= NODES
      }, 60_000, 500)
      const before = Object.fromEntries(net.daemons.map(d => [d.name, mib(memoryOf(d.child.pid!).rssKiB)]))
      const t0 = Date.now()
      const { tradeId } = await buyer.rpc.call<{ tradeId: string }>('buyer_postDemand', {
        tag, codePath: join(ARTIFACTS_DIR, 'StatsFast.json'), nodes: NODES, sellers: 1, sellerPrice: '1',
        sellerCap: (128n * BigInt(MiB)).toString(), nodePrice: '1', nodeCap: DEFAULT_GAS_CAP.toString(),
        outputPrice: '1', outputCap: '4096', deadlineSeconds: 1800
      })
      const state = await waitFor(`trade ${tradeId} to end`, async () => {
        const v = await buyer.rpc.call<{ records: Array<{ role: string, state: string, reason?: string }> }>('trade_get', { tradeId })
        const rec = v.records.find(r => r.role === 'buyer')!
        return ['delivered', 'rated', 'refunded', 'failed'].includes(rec.state) ? rec : undefined
      }, 10 * 60_000, 200)
      out.tradeMs = Date.now() - t0
      if (state.state !== 'delivered') throw new Error(`the trade ended ${state.state}: ${state.reason ?? ''}`)
      const result = await buyer.rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
      if (!result.verified || !Buffer.from(getBytes(result.result)).equals(Buffer.from(expected))) throw new Error('wrong result')
      // The nodes settle (acknowledged result, sealed state dropped) shortly after the buyer's delivery.
      await waitFor('the nodes to settle', async () => {
        for (const d of net.nodes) {
          const v = await d.rpc.call<{ records: Array<{ role: string, state: string }> }>('trade_get', { tradeId })
          const r = v.records.find(x => x.role === 'node')
          if (r !== undefined && !['finalized', 'delivered', 'refunded', 'failed'].includes(r.state)) return false
        }
        return true
      }, 120_000, 200)
      const after = Object.fromEntries(net.daemons.map(d => [d.name, mib(memoryOf(d.child.pid!).rssKiB)]))
      say(`  after: ${JSON.stringify(after)}; waiting ${AFTER_MS} ms`)
      await new Promise(resolve => setTimeout(resolve, AFTER_MS))
      const later = Object.fromEntries(net.daemons.map(d => [d.name, mib(memoryOf(d.child.pid!).rssKiB)]))
      const peak = Object.fromEntries(net.daemons.map(d => [d.name, mib(memoryOf(d.child.pid!).peakKiB)]))
      out.trade = { before, after, later, peak }
    }
  } finally {
    say('stopping the testnet')
    await net.stop()
    if (flags.keep === undefined) rmSync(dir, { recursive: true, force: true })
  }
  out.loadAfter = loadavg()[0]
  process.stdout.write(JSON.stringify(out, null, 1) + '\n')
}

await main()
