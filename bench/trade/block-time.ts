// A trade on a chain with block times (issue 12): anvil mining a block every S seconds, as `sdte devnet
// up --block-time S` runs it, against the same trade on a chain that mines a block per transaction (the
// baseline). For each: the wall time by phase (daemon/tools/phases.ts), the blocks from the demand's post
// to the settlement, and the transactions on the critical path (each must be mined before the next can
// be sent): the demand's hash (BDBC, sellers and nodes act only on a posted demand), openTrade, the last
// commitment (reveals open after it), the reveal that settles. The others (the other nodes' commitments
// and reveals, the withdrawals) go into the same blocks or after the settlement.
//
//   node bench/trade/block-time.ts [--block-time 12] [--nodes 3] [--write] [--keep DIR]
//
// --write replaces the `## Block times` section of BENCHMARKS.md.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { execFileSync } from 'node:child_process'
import { getBytes } from 'ethers'
import { LocalTestnet, waitFor, type TestnetDaemon } from '../../daemon/tools/index.ts'
import { PHASES, enclaveRunMsFromLog, tradePhases, type PartyRecord, type TradePhases } from '../../daemon/tools/phases.ts'
import { ChainClient } from '../../contracts/index.ts'
import { sampleDataset, referenceOutput } from '../../enclave/examples.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { writeBenchmarkSections } from '../benchmarks-md.ts'

const { values } = parseArgs({ options: { 'block-time': { type: 'string', default: '12' }, nodes: { type: 'string', default: '3' }, write: { type: 'boolean', default: false }, keep: { type: 'string' } } })
const blockTime = Number(values['block-time'])
const nodes = Number(values.nodes)
if (!Number.isInteger(blockTime) || blockTime < 1) throw new Error('--block-time must be a whole number of seconds, at least 1')
if (!Number.isInteger(nodes) || nodes < 1) throw new Error('--nodes must be a positive integer')
/** A trade's longest wait: several blocks per step at 12 s. */
const TRADE_TIMEOUT_MS = 20 * 60_000
const RECORDS = 2000
const loadAtStart = loadavg()[0]

interface TradeView { records: PartyRecord[] }
interface Row { label: string, phases: TradePhases, blocks: number, criticalTxs: number, allTxs: number, blockSpan: Record<string, number> }

async function recordOf (d: TestnetDaemon, tradeId: string, role: PartyRecord['role']): Promise<PartyRecord> {
  return await waitFor(`${d.name}'s record to end`, async () => {
    const r = (await d.rpc.call<TradeView>('trade_get', { tradeId })).records.find(x => x.role === role)
    return r !== undefined && ['finalized', 'delivered', 'refunded', 'failed'].includes(r.state) ? r : undefined
  }, TRADE_TIMEOUT_MS, 500)
}

async function oneTrade (label: string, seconds: number | undefined): Promise<Row> {
  const dir = values.keep !== undefined ? join(values.keep, label.replace(/\W+/g, '-')) : mkdtempSync(join(tmpdir(), 'sdte-blockbench-'))
  let net: LocalTestnet | undefined
  let chain: ChainClient | undefined
  try {
    net = await LocalTestnet.start({ dir, buyers: 1, sellers: 1, nodes, blockTime: seconds })
    chain = await ChainClient.connect({ network: net.network })
    const dataset = sampleDataset(RECORDS, 5)
    const seller = net.sellers[0]
    const buyer = net.buyers[0]
    const path = join(seller.datadir, 'data.csv')
    writeFileSync(path, dataset)
    await seller.rpc.call('seller_addDataset', { path, tag: 'bench-blocks', unitPrice: '1', policy: { mode: 'any' } })
    await waitFor('the DHT announcement', async () => (await buyer.rpc.call<unknown[]>('net_findProviders', { key: 'sdte:dataset:bench-blocks' })).length > 0 ? true : undefined, 120_000, 500)
    const { tradeId } = await buyer.rpc.call<{ tradeId: string }>('buyer_postDemand', {
      tag: 'bench-blocks', codePath: join(ARTIFACTS_DIR, 'StatsFast.json'), nodes, sellers: 1,
      sellerPrice: '2', sellerCap: '100000000', nodePrice: '1', nodeCap: '2000000000', outputPrice: '2', outputCap: '4096', deadlineSeconds: 1800
    })
    const view = await waitFor('the trade to end', async () => {
      const v = await buyer.rpc.call<TradeView>('trade_get', { tradeId })
      return ['delivered', 'refunded', 'failed'].includes(v.records[0].state) ? v : undefined
    }, TRADE_TIMEOUT_MS, 500)
    const buyerRec = view.records[0]
    if (buyerRec.state !== 'delivered') throw new Error(`${label}: the trade ended ${buyerRec.state}: ${buyerRec.reason ?? ''}`)
    const result = await buyer.rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
    if (!result.verified || !Buffer.from(getBytes(result.result)).equals(Buffer.from(referenceOutput('Stats', [dataset])))) throw new Error(`${label}: wrong result`)
    const parties = [await recordOf(seller, tradeId, 'seller'), ...await Promise.all(net.nodes.map(async n => await recordOf(n, tradeId, 'node')))]
    const phases = tradePhases(buyerRec, parties[0], parties.slice(1), net.nodes.map(n => enclaveRunMsFromLog(n.output(), tradeId) ?? 0))

    // The chain's side: in which blocks the steps landed.
    const events = await chain.events(net.network.deployBlock)
    const ofTrade = events.filter(e => String(e.args.tradeId ?? '').toLowerCase() === tradeId)
    const blockOf = (name: string, pick: (xs: number[]) => number): number => pick(ofTrade.filter(e => e.name === name).map(e => e.blockNumber))
    const opened = blockOf('TradeOpened', xs => Math.min(...xs))
    const posted = Math.max(...events.filter(e => e.name === 'DemandPosted' && e.blockNumber <= opened).map(e => e.blockNumber))
    const lastCommit = blockOf('ResultCommitted', xs => Math.max(...xs))
    const settled = blockOf('TradeSettled', xs => Math.min(...xs))
    // Every transaction of the trade: one per distinct transaction hash among its events and the withdrawals after it.
    const txs = new Set(ofTrade.map(e => e.txHash))
    const payees = new Set([buyer, seller, ...net.nodes].map(d => d.info.ethAddress.toLowerCase()))
    for (const e of events) if (e.name === 'Withdrawn' && e.blockNumber >= settled && payees.has(String(e.args.account).toLowerCase())) txs.add(e.txHash)
    return {
      label,
      phases,
      blocks: settled - posted + 1,
      criticalTxs: 4,
      allTxs: txs.size + 1, // + the demand's post
      blockSpan: { 'post → open': opened - posted, 'open → last commit': lastCommit - opened, 'last commit → settled': settled - lastCommit }
    }
  } finally {
    chain?.close()
    await net?.stop()
    if (values.keep === undefined) rmSync(dir, { recursive: true, force: true })
  }
}

const rows: Row[] = []
for (const [label, s] of [['a block per transaction (baseline)', undefined], [`a block every ${blockTime} s`, blockTime]] as Array<[string, number | undefined]>) {
  process.stderr.write(`trade on ${label}...\n`)
  rows.push(await oneTrade(label, s))
}

const sec = (ms: number): string => (ms / 1000).toFixed(1)
let commit = 'unknown'
try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim() } catch {}
const base = rows[0].phases.totalMs
const section = [
  '## Block times',
  '',
  `Command: \`node bench/trade/block-time.ts --block-time ${blockTime} --nodes ${nodes}${values.write ? ' --write' : ''}\`, commit ${commit}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${loadAtStart.toFixed(1)} when the run began (other jobs share the machine). One trade per row on a local testnet of separate processes: 1 buyer, 1 seller (${RECORDS.toLocaleString('en')} records), ${nodes} nodes, StatsFast; anvil mining a block per transaction (the baseline) or one every ${blockTime} s (\`sdte devnet up --block-time ${blockTime}\`). Wall seconds by phase (daemon/tools/phases.ts); blocks from the demand's post to the settlement, both counted.`,
  '',
  `| chain | ${PHASES.join(' | ')} | total | ratio | blocks | ${Object.keys(rows[0].blockSpan).join(' | ')} | critical-path txs | all txs |`,
  `|---|${PHASES.map(() => '---:').join('|')}|---:|---:|---:|${Object.keys(rows[0].blockSpan).map(() => '---:').join('|')}|---:|---:|`,
  ...rows.map(r => `| ${r.label} | ${PHASES.map(p => sec(r.phases.phases[p])).join(' | ')} | **${sec(r.phases.totalMs)}** | ${(r.phases.totalMs / base).toFixed(1)}× | ${r.blocks} | ${Object.values(r.blockSpan).join(' | ')} | ${r.criticalTxs} | ${r.allTxs} |`),
  '',
  'The critical path is four transactions, each mined before the next can be sent: the demand\'s hash on BDBC (sellers and nodes act only on a posted demand), `openTrade`, the last node\'s `commitResult` (reveals open once every node has committed), and the `submitResult` that makes the majority (DTMC settles in it). The other nodes\' commitments and reveals share those blocks; the withdrawals come after the settlement, off the path. On timed blocks each of the four waits on average half a block to be mined plus the role\'s next look (trade.tickMs, 500 ms); the offer window (3 s) and the enclave run are as on the baseline.'
].join('\n')
process.stdout.write(section + '\n')
if (values.write) writeBenchmarkSections([section])
