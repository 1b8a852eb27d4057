// A trade across hosts, timed by phase: every daemon in its own network namespace (daemon/tools/
// netns.ts), the trusted node behind a NAT router, and a delaying TCP relay in front of every public
// daemon (it announces the relay's port), so that each connection to a public host crosses one delay
// each way; the NAT router drops a share of the packets it forwards. Needs root, ip and nft.
//
//   node bench/trade/nat.ts [--delay-ms 0,25] [--loss 0,10] [--records 20000] [--keep DIR]
//
// --delay-ms: one-way delays to try (ms, comma list); --loss: per-thousand packet losses to try.
// Prints a Markdown table: one trade per (delay, loss), its phases (daemon/tools/phases.ts) and total.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { getBytes } from 'ethers'
import { LocalTestnet, NetnsNetwork, netnsUnavailable, waitFor, type TestnetDaemon } from '../../daemon/tools/index.ts'
import { PHASES, enclaveRunMsFromLog, tradePhases, type PartyRecord, type TradePhases } from '../../daemon/tools/phases.ts'
import { sampleDataset, referenceOutput } from '../../enclave/examples.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'

const P2P_PORT = 4001
const PUBLIC_PORT = 4002
const TRADE_TIMEOUT_MS = 300_000
const HOSTS: Record<string, string> = { relay: 'relay', buyer1: 'buyer', seller1: 'seller', node1: 'node' }

const { values } = parseArgs({ options: { 'delay-ms': { type: 'string', default: '0,25' }, loss: { type: 'string', default: '0,10' }, records: { type: 'string', default: '20000' }, keep: { type: 'string' } } })
const numbers = (s: string): number[] => s.split(',').map(Number)
const delays = numbers(values['delay-ms'])
const losses = numbers(values.loss)
const records = Number(values.records)

const why = netnsUnavailable()
if (why !== null) {
  process.stderr.write(`bench/trade/nat.ts cannot run here: ${why}\n`)
  process.exit(1)
}

interface TradeView { records: PartyRecord[], chain?: { nodes: Array<{ payee: string }> } }

async function recordOf (d: TestnetDaemon, tradeId: string, role: PartyRecord['role']): Promise<PartyRecord> {
  return await waitFor(`${d.name}'s record to end`, async () => {
    const r = (await d.rpc.call<TradeView>('trade_get', { tradeId })).records.find(x => x.role === role)
    return r !== undefined && ['finalized', 'delivered', 'refunded', 'failed'].includes(r.state) ? r : undefined
  }, 60_000, 200)
}

async function oneTrade (delayMs: number, lossPerMille: number): Promise<TradePhases> {
  const dir = values.keep !== undefined ? join(values.keep, `d${delayMs}-l${lossPerMille}`) : mkdtempSync(join(tmpdir(), 'sdte-natbench-'))
  const hosts = await NetnsNetwork.create({ hosts: [{ name: 'relay' }, { name: 'buyer' }, { name: 'seller' }, { name: 'node', nat: true }], lossPerMille })
  let net: LocalTestnet | undefined
  try {
    for (const h of ['relay', 'buyer', 'seller']) await hosts.delayRelay(h, PUBLIC_PORT, `${hosts.host(h).ip}:${P2P_PORT}`, { delayMs })
    net = await LocalTestnet.start({
      dir,
      buyers: 1,
      sellers: 1,
      nodes: 1,
      chainHost: hosts.chainHost,
      config: { p2p: { mode: 'public' } },
      place: hosts.placeDaemons({ hostOf: (name) => HOSTS[name], p2pPort: P2P_PORT, announcePort: () => PUBLIC_PORT })
    })
    const dataset = sampleDataset(records, 7)
    const seller = net.sellers[0]
    const buyer = net.buyers[0]
    const path = join(seller.datadir, 'data.csv')
    writeFileSync(path, dataset)
    await seller.rpc.call('seller_addDataset', { path, tag: 'bench-nat', unitPrice: '1', policy: { mode: 'any' } })
    await waitFor('the DHT announcement', async () => (await buyer.rpc.call<unknown[]>('net_findProviders', { key: 'sdte:dataset:bench-nat' })).length > 0, 60_000, 500)
    const { tradeId } = await buyer.rpc.call<{ tradeId: string }>('buyer_postDemand', {
      tag: 'bench-nat', codePath: join(ARTIFACTS_DIR, 'StatsFast.json'), nodes: 1, sellers: 1,
      sellerPrice: '2', sellerCap: '100000000', nodePrice: '1', nodeCap: '2000000000', outputPrice: '2', outputCap: '4096', deadlineSeconds: 600
    })
    const view = await waitFor('the trade to end', async () => {
      const v = await buyer.rpc.call<TradeView>('trade_get', { tradeId })
      return ['delivered', 'refunded', 'failed'].includes(v.records[0].state) ? v : undefined
    }, TRADE_TIMEOUT_MS, 200)
    const buyerRec = view.records[0]
    if (buyerRec.state !== 'delivered') throw new Error(`the trade ended ${buyerRec.state}: ${buyerRec.reason ?? ''}`)
    const result = await buyer.rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
    if (!result.verified || !Buffer.from(getBytes(result.result)).equals(Buffer.from(referenceOutput('Stats', [dataset])))) throw new Error('wrong result')
    const node = net.nodes[0]
    return tradePhases(buyerRec, await recordOf(seller, tradeId, 'seller'), [await recordOf(node, tradeId, 'node')], [enclaveRunMsFromLog(node.output(), tradeId) ?? 0])
  } finally {
    await net?.stop()
    await hosts.destroy()
    if (values.keep === undefined) rmSync(dir, { recursive: true, force: true })
  }
}

const sec = (ms: number): string => (ms / 1000).toFixed(2)
const lines = [
  `Command: \`node bench/trade/nat.ts --delay-ms ${delays.join(',')} --loss ${losses.join(',')} --records ${records}\`. One trade per row, ${records.toLocaleString('en')} records, 1 seller, 1 node behind a NAT; seconds.`,
  '',
  `| one-way delay (ms) | loss (‰) | ${PHASES.join(' | ')} | total |`,
  `|---:|---:|${PHASES.map(() => '---:').join('|')}|---:|`
]
for (const d of delays) {
  for (const l of losses) {
    process.stderr.write(`trade at ${d} ms, ${l} per mille...\n`)
    const f = await oneTrade(d, l)
    lines.push(`| ${d} | ${l} | ${PHASES.map(p => sec(f.phases[p])).join(' | ')} | **${sec(f.totalMs)}** |`)
  }
}
process.stdout.write(lines.join('\n') + '\n')
