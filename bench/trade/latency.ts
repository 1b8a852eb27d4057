// Latency of a small trade (issue 13, "event-driven roles"): 1 KiB of the sample CSV, StatsFast, 3 nodes
// (of the testnet's, 3 by default), on the automining devnet or on timed blocks; each trade by phase (as in
// run.ts, daemon/tools/phases.ts), and the chain's part of it: which transactions were mined in which block
// between the demand and the checked result. Prints a Markdown table; writes nothing.
//
//   node bench/trade/latency.ts [--repeats N] [--nodes N] [--testnet-nodes N] [--block-time S] [--mib N] [--keep DIR]
//
// --mib N: a dataset of about N MiB of the sample CSV instead of 1 KiB (issue 13, "delivery as a pipeline": 64 MiB
// to 3 nodes), on the terms of run.ts (sellerCap covers the dataset at 1 wei a byte; the enclave's gas cap 1 Ggas).
//
// For a before/after, run it on both trees (the same machine, one after the other) and compare the medians.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { execFileSync } from 'node:child_process'
import { Interface, JsonRpcProvider, getBytes } from 'ethers'
import { sampleDataset, referenceOutput } from '../../enclave/examples.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { datasetKey, enclaveKey } from '../../p2p/dht-keys.ts'
import { MAX_DEMANDS_PER_BUYER, DEMAND_RATE_WINDOW_SECONDS } from '../../p2p/demand/index.ts'
import { LocalTestnet, type TestnetDaemon } from '../../daemon/tools/testnet.ts'
import { ROOT, waitFor } from '../../daemon/tools/child-daemons.ts'
import { PHASES, tradePhases, type PartyRecord, type TradePhases } from '../../daemon/tools/phases.ts'

const { values: flags } = parseArgs({
  options: {
    repeats: { type: 'string', default: '5' },
    nodes: { type: 'string', default: '3' },
    'block-time': { type: 'string' },
    'testnet-nodes': { type: 'string' },
    mib: { type: 'string' },
    keep: { type: 'string' }
  }
})
const REPEATS = Number(flags.repeats)
const NODES = Number(flags.nodes)
const BLOCK_TIME = flags['block-time'] === undefined ? undefined : Number(flags['block-time'])
/** Nodes on the testnet (default: as many as the trade needs; run.ts has 5): the buyer attests every offered enclave and keeps the n fastest. */
const TESTNET_NODES = Number(flags['testnet-nodes'] ?? NODES)
const DATASET_MIB = flags.mib === undefined ? undefined : Number(flags.mib)
const TAG = DATASET_MIB === undefined ? 'bench-latency-1kib' : `bench-latency-${DATASET_MIB}mib`
/** The seller's dataset at 1 wei a byte must fit its cap (the seller refuses a trade below unitPrice × size). */
const SELLER_CAP = Math.max(1_000_000, 2 * (DATASET_MIB ?? 0) * 1024 * 1024)
const TRADE_TERMS = {
  sellers: 1, sellerPrice: '1', sellerCap: String(SELLER_CAP), nodePrice: '1', nodeCap: '1000000000', outputPrice: '1', outputCap: '4096', deadlineSeconds: 1800
}
const TRADE_TIMEOUT_MS = 5 * 60_000
/** How long a daemon may take to start: minutes on a machine other work saturates. */
const START_TIMEOUT_MS = 300_000
/** Let a fresh testnet settle (DHT refreshes, first gossip heartbeats) before the first trade. */
const SETTLE_MS = 3000

const say = (msg: string): void => { process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }
const sec = (ms: number): string => (ms / 1000).toFixed(2)

interface View { records: PartyRecord[], chain: { nodes: Array<{ payee: string }> } | null }

async function recordOf (d: TestnetDaemon, tradeId: string, role: PartyRecord['role']): Promise<PartyRecord | undefined> {
  return (await d.rpc.call<View>('trade_get', { tradeId })).records.find(r => r.role === role)
}

/** Method names by 4-byte selector, over the three contracts. */
function selectors (): Map<string, string> {
  const out = new Map<string, string>()
  for (const name of ['CISC', 'BDBC', 'DTMC']) {
    const iface = new Interface(JSON.parse(readFileSync(join(ARTIFACTS_DIR, `${name}.json`), 'utf8')).abi)
    iface.forEachFunction(f => { out.set(f.selector, `${name}.${f.name}`) })
  }
  return out
}

/** The transactions mined in blocks `from`..`to`, by block: "block 12: DTMC.commitResult ×3". */
async function chainPart (provider: JsonRpcProvider, from: number, to: number, names: Map<string, string>): Promise<string[]> {
  const out: string[] = []
  let previous: number | undefined
  for (let n = from; n <= to; n++) {
    const b = await provider.getBlock(n, true)
    if (b === null) continue
    const calls = new Map<string, number>()
    for (const tx of b.prefetchedTransactions) {
      const m = names.get(tx.data.slice(0, 10)) ?? (tx.data === '0x' ? 'transfer' : 'other')
      calls.set(m, (calls.get(m) ?? 0) + 1)
    }
    if (calls.size === 0) continue
    out.push(`block ${n} (${previous === undefined ? 'first' : `+${b.timestamp - previous} s`}): ${[...calls].map(([m, c]) => c > 1 ? `${m} ×${c}` : m).join(', ')}`)
    previous = b.timestamp
  }
  return out
}

/** The sample CSV closest to `bytes` (as run.ts: record lengths grow with the id, so estimate, then correct once). */
function datasetOfSize (bytes: number, seed: number): Uint8Array {
  const probe = sampleDataset(1000, seed)
  let records = Math.max(1, Math.round(bytes / (probe.length / 1000)))
  records = Math.max(1, Math.round(records * bytes / sampleDataset(records, seed).length))
  return sampleDataset(records, seed)
}

async function runTrade (net: LocalTestnet, provider: JsonRpcProvider, expected: Uint8Array): Promise<{ figures: TradePhases, tradeId: string, fromBlock: number, toBlock: number }> {
  const buyer = net.buyers[0]
  const fromBlock = await provider.getBlockNumber() + 1
  const { tradeId } = await buyer.rpc.call<{ tradeId: string }>('buyer_postDemand', { tag: TAG, codePath: join(ARTIFACTS_DIR, 'StatsFast.json'), nodes: NODES, ...TRADE_TERMS })
  const view = await waitFor(`trade ${tradeId} to end`, async () => {
    const v = await buyer.rpc.call<View>('trade_get', { tradeId })
    const rec = v.records.find(r => r.role === 'buyer')!
    return ['delivered', 'rated', 'refunded', 'failed'].includes(rec.state) ? v : undefined
  }, TRADE_TIMEOUT_MS, 50)
  const toBlock = await provider.getBlockNumber()
  const buyerRec = view.records.find(r => r.role === 'buyer')!
  if (buyerRec.state !== 'delivered') throw new Error(`buyer ended ${buyerRec.state}: ${buyerRec.reason ?? ''}`)
  const result = await buyer.rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
  if (!result.verified || !Buffer.from(getBytes(result.result)).equals(Buffer.from(expected))) throw new Error('the result differs from the plain TypeScript analysis')
  const chosen = (view.chain?.nodes ?? []).map(n => net.nodes.find(d => d.info.ethAddress.toLowerCase() === n.payee.toLowerCase())!)
  // Every party's part ended (withdrawals) before the next trade: it starts on quiet daemons.
  const sellerRec = await waitFor('the seller to settle', async () => {
    const r = await recordOf(net.sellers[0], tradeId, 'seller')
    return r !== undefined && ['finalized', 'refunded', 'failed'].includes(r.state) ? r : undefined
  }, 60_000, 100)
  const nodeRecs = await Promise.all(chosen.map(async d => await waitFor(`${d.name} to settle`, async () => {
    const r = await recordOf(d, tradeId, 'node')
    return r !== undefined && ['finalized', 'delivered', 'refunded', 'failed'].includes(r.state) ? r : undefined
  }, 60_000, 100)))
  return { figures: tradePhases(buyerRec, sellerRec, nodeRecs, []), tradeId, fromBlock, toBlock }
}

async function main (): Promise<void> {
  // One buyer posts every demand: past its rate, sellers and nodes ignore them and the trades wait out the offer window.
  if (REPEATS > MAX_DEMANDS_PER_BUYER) say(`warning: more than ${MAX_DEMANDS_PER_BUYER} trades from one buyer: those within ${DEMAND_RATE_WINDOW_SECONDS} s of its first ${MAX_DEMANDS_PER_BUYER} get their offers only at the end of the offer window`)
  const dir = flags.keep !== undefined ? resolve(flags.keep) : mkdtempSync(join(tmpdir(), 'sdte-bench-latency-'))
  mkdirSync(dir, { recursive: true })
  const load = loadavg().map(x => x.toFixed(2)).join(' ')
  let commit = 'a tree outside git'
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() } catch {}
  say(`starting a testnet in ${dir}: devnet (${BLOCK_TIME === undefined ? 'automining' : `${BLOCK_TIME} s blocks`}), relay, 1 buyer, 1 seller, ${TESTNET_NODES} nodes`)
  const net = await LocalTestnet.start({ dir, buyers: 1, sellers: 1, nodes: TESTNET_NODES, blockTime: BLOCK_TIME, startTimeoutMs: START_TIMEOUT_MS })
  const provider = new JsonRpcProvider(net.network.rpcUrl, undefined, { staticNetwork: true })
  const rows: Array<Awaited<ReturnType<typeof runTrade>>> = []
  try {
    await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
    const data = DATASET_MIB === undefined ? sampleDataset(64, 1) : datasetOfSize(DATASET_MIB * 1024 * 1024, 1)
    const path = join(dir, 'data.csv')
    writeFileSync(path, data)
    await net.sellers[0].rpc.call('seller_addDataset', { path, tag: TAG, unitPrice: '1', policy: { mode: 'any' } })
    const measurement = net.network.measurements[0]
    await waitFor('DHT announcements', async () =>
      (await net.buyers[0].rpc.call<unknown[]>('net_findProviders', { key: datasetKey(TAG) })).length >= 1 &&
      (await net.buyers[0].rpc.call<unknown[]>('net_findProviders', { key: enclaveKey(measurement) })).length >= TESTNET_NODES, 60_000, 500)
    const expected = referenceOutput('Stats', [data])
    for (let i = 0; i < REPEATS; i++) {
      const row = await runTrade(net, provider, expected)
      rows.push(row)
      say(`trade ${i + 1}/${REPEATS}: total ${sec(row.figures.totalMs)} s: ${PHASES.map(p => `${p} ${sec(row.figures.phases[p])}`).join(', ')}`)
    }
    const names = selectors()
    const median = [...rows].sort((a, b) => a.figures.totalMs - b.figures.totalMs)[Math.floor((rows.length - 1) / 2)]
    const lines = [
      `\`node bench/trade/latency.ts --repeats ${REPEATS} --nodes ${NODES} --testnet-nodes ${TESTNET_NODES}${BLOCK_TIME === undefined ? '' : ` --block-time ${BLOCK_TIME}`}${DATASET_MIB === undefined ? '' : ` --mib ${DATASET_MIB}`}\` (${data.length} bytes of CSV), commit ${commit}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${load} when it began; ${new Date().toISOString().slice(0, 10)}.`,
      '',
      `| run | ${PHASES.join(' | ')} | total |`,
      `|---|${PHASES.map(() => '---:').join('|')}|---:|`,
      ...rows.map((r, i) => `| ${i + 1}${r === median ? ' (median)' : ''} | ${PHASES.map(p => sec(r.figures.phases[p])).join(' | ')} | **${sec(r.figures.totalMs)}** |`),
      '',
      `Seller picks the trade up (buyer escrowed → seller's record): ${rows.map(r => sec(r.figures.sellerPickupMs)).join(', ')} s.`,
      '',
      `Transactions mined during the median trade (demand posted → result checked, ${sec(median.figures.totalMs)} s; the block's time after the previous one listed):`,
      '',
      ...(await chainPart(provider, median.fromBlock, median.toBlock, names)).map(l => `- ${l}`)
    ]
    process.stdout.write(lines.join('\n') + '\n')
  } finally {
    provider.destroy()
    await net.stop()
    if (flags.keep === undefined) rmSync(dir, { recursive: true, force: true })
  }
}

await main()
