// `sdte demo` (npm start): a whole trade on a local testnet that it starts itself. A devnet, a relay,
// one buyer, two sellers and three trusted nodes as separate processes; example datasets; a demand
// with an example analysis; the trade printed as it goes; then the result (checked against the same
// computation in plain TypeScript), the payments and refund on chain, and the time of each phase.
import { accessSync, constants, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join, relative, resolve } from 'node:path'
import { AbiCoder, getBytes } from 'ethers'
import { sampleDataset, referenceOutput, EXAMPLE_ANALYSES, type ExampleAnalysis } from '../../enclave/index.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/index.ts'
import { datasetKey } from '../../p2p/index.ts'
import { LocalTestnet, type TestnetDaemon } from './testnet.ts'
import { ROOT, waitFor } from './child-daemons.ts'
import { PHASES, tradePhases, type PartyRecord } from './phases.ts'

export interface DemoOptions {
  keep: boolean
  dir?: string
  analysis: ExampleAnalysis
  build: 'Fast' | 'Plain'
  records: number
  nodes: number
  out: (line: string) => void
  /** Called once the testnet is up (the CLI stops it on Ctrl-C). */
  onTestnet?: (net: LocalTestnet) => void
}

interface TradeView {
  records: Array<{ role: string, state: string, reason?: string, timeline: Array<{ state: string, at: string, note?: string }>, phaseMs?: Record<string, number>, refund?: string, payments?: Record<string, string>, size?: number, nodes?: Array<{ index: number, delivered: boolean, sentBytes: number }> }>
  chain: { state: string, deposit: string, final: { resultHash: string, count: number, status: number, resultSize: string } | null, nodes: Array<{ payee: string }>, sellers: Array<{ account: string }> } | null
}

const abi = AbiCoder.defaultAbiCoder()

/** A person-readable line for an example analysis' output. */
function describeOutput (analysis: ExampleAnalysis, out: Uint8Array): string {
  const fx = (v: bigint): string => (Number(v) / 1e6).toFixed(3)
  switch (analysis) {
    case 'Stats': {
      const [n, sum, min, max, mean, variance] = abi.decode(['uint256', 'int256', 'int256', 'int256', 'int256', 'int256'], out) as unknown as bigint[]
      return `count ${n}, sum ${sum}, min ${min}, max ${max}, mean ${fx(mean)}, variance ${fx(variance)}`
    }
    case 'Histogram': return `buckets of 100: ${(abi.decode(['uint256[]'], out)[0] as bigint[]).join(' ')}`
    case 'FilterCount': return `records with 500 <= value <= 899: ${abi.decode(['uint256'], out)[0] as bigint}`
    case 'LinearFit': {
      const [n, slope, intercept] = abi.decode(['uint256', 'int256', 'int256'], out) as unknown as bigint[]
      return `n ${n}, y = ${fx(slope)} x + ${fx(intercept)}`
    }
  }
}

function eth (wei: string | bigint): string {
  return `${wei.toString()} wei`
}

export async function runDemo (o: DemoOptions): Promise<void> {
  const t0 = Date.now()
  const say = (msg: string): void => o.out(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`)
  const dir = o.dir === undefined ? mkdtempSync(join(tmpdir(), 'sdte-demo-')) : resolve(o.dir)
  mkdirSync(dir, { recursive: true })
  say(`starting a local testnet in ${dir}: devnet, relay, 1 buyer, 2 sellers, ${o.nodes} trusted nodes (separate processes)`)
  const net = await LocalTestnet.start({ dir, sellers: 2, nodes: o.nodes, env: { SDTE_LOG: process.env.SDTE_LOG ?? 'warn' } })
  o.onTestnet?.(net)
  let ok = false
  try {
    say(`devnet: chain ${net.network.chainId} at ${net.network.rpcUrl}; DTMC ${net.network.contracts.DTMC}`)
    say(`${net.daemons.length} daemons up: ${net.daemons.map(d => d.name).join(', ')}`)

    const tag = 'weather-2026'
    const datasets: Uint8Array[] = []
    for (const [i, seller] of net.sellers.entries()) {
      const data = sampleDataset(o.records, i + 1)
      datasets.push(data)
      const path = join(seller.datadir, 'dataset.csv')
      writeFileSync(path, data)
      const r = await seller.rpc.call<{ datasetId: string, size: number, commitment: string }>('seller_addDataset', { path, tag, unitPrice: '10', policy: { mode: 'any' } })
      say(`${seller.name} listed ${o.records} records (${r.size} bytes) as "${tag}", offer ${r.datasetId}, commitment ${r.commitment.slice(0, 18)}…`)
    }
    // Wait until the sellers' and nodes' DHT announcements have reached the network.
    await waitFor('DHT announcements', async () => (await net.buyers[0].rpc.call<unknown[]>('net_findProviders', { key: datasetKey(tag) })).length >= net.sellers.length, 30_000, 500)

    const buyer = net.buyers[0]
    const artifact = join(ARTIFACTS_DIR, `${o.analysis}${o.build}.json`)
    const posted = await buyer.rpc.call<{ demandId: string, tradeId: string, codeHash: string, deposit: string }>('buyer_postDemand', {
      tag,
      codePath: artifact,
      nodes: o.nodes,
      sellers: net.sellers.length,
      sellerPrice: '20',
      // Enough for each seller's full price (10 wei a byte): sellers refuse less.
      sellerCap: (10n * BigInt(Math.max(...datasets.map(d => d.length)))).toString(),
      nodePrice: '1',
      nodeCap: '2000000000',
      outputPrice: '100',
      outputCap: '4096',
      deadlineSeconds: 600
    })
    say(`${buyer.name} posted a demand for "${tag}": ${o.analysis}${o.build} (codeHash ${posted.codeHash.slice(0, 18)}…), ${o.nodes} nodes, 2 sellers; deposit ${eth(posted.deposit)}`)
    say(`trade ${posted.tradeId}`)

    // Follow the trade: every state change of the buyer, and the sellers' deliveries.
    const seen = new Set<string>()
    const delivered = new Set<string>()
    const progress = new Map<string, number>()
    const view = await waitFor('the trade to end', async () => {
      const v = await buyer.rpc.call<TradeView>('trade_get', { tradeId: posted.tradeId })
      const rec = v.records.find(r => r.role === 'buyer')!
      for (const e of rec.timeline) {
        const key = `${e.state}@${e.at}`
        if (seen.has(key)) continue
        seen.add(key)
        say(`${buyer.name}: ${e.state}${e.note !== undefined ? ` — ${e.note}` : ''}`)
      }
      for (const s of net.sellers) {
        const sv = await s.rpc.call<TradeView>('trade_get', { tradeId: posted.tradeId }).catch(() => null)
        const rec = sv?.records.find(r => r.role === 'seller')
        for (const n of rec?.nodes ?? []) {
          const key = `${s.name}/${n.index}`
          if (n.delivered && !delivered.has(key)) {
            delivered.add(key)
            say(`${s.name} → enclave of node ${n.index}: ${n.sentBytes} bytes delivered (attested, encrypted in 64 KiB chunks)`)
          } else if (!n.delivered && n.sentBytes > 0 && progress.get(key) !== n.sentBytes) {
            progress.set(key, n.sentBytes)
            say(`${s.name} → enclave of node ${n.index}: ${n.sentBytes} of ${rec?.size ?? '?'} bytes`)
          }
        }
      }
      return ['delivered', 'rated', 'refunded', 'failed'].includes(rec.state) ? v : undefined
    }, 600_000, 250)
    const rec = view.records.find(r => r.role === 'buyer')!
    if (rec.state !== 'delivered') throw new Error(`the trade ended ${rec.state}: ${rec.reason ?? ''}`)

    const result = await buyer.rpc.call<{ result: string, resultHash: string, verified: boolean }>('buyer_result', { tradeId: posted.tradeId })
    const expected = referenceOutput(o.analysis, datasets)
    const same = Buffer.from(getBytes(result.result)).equals(Buffer.from(expected))
    say(`result: ${describeOutput(o.analysis, getBytes(result.result))}`)
    say(`result hash ${result.resultHash.slice(0, 18)}… equals the final hash on DTMC: ${result.verified ? 'yes' : 'NO'}; equals the same analysis in plain TypeScript: ${same ? 'yes' : 'NO'}`)
    const rating = await buyer.rpc.call<{ txHash: string }>('buyer_rate', { tradeId: posted.tradeId, seller: net.sellers[0].info.ethAddress, score: 5, comment: 'demo' })
    say(`${buyer.name} rated ${net.sellers[0].name} 5/5 (tx ${rating.txHash.slice(0, 18)}…)`)

    const names = new Map(net.daemons.map(d => [d.info.ethAddress.toLowerCase(), d.name]))
    const payments = rec.payments ?? {}
    let total = 0n
    for (const [account, wei] of Object.entries(payments).sort()) {
      total += BigInt(wei)
      say(`paid on chain: ${(names.get(account) ?? account).padEnd(8)} ${eth(wei)}`)
    }
    const deposit = BigInt(view.chain?.deposit ?? posted.deposit)
    say(`deposit ${eth(deposit)} = payments + refund (${eth(total)}): ${total === deposit ? 'yes' : 'NO'}`)
    // Each party's record of the trade: the phases come from all of them (daemon/tools/phases.ts).
    const recordOf = async (d: TestnetDaemon, role: string): Promise<PartyRecord | undefined> =>
      (await d.rpc.call<{ records: PartyRecord[] }>('trade_get', { tradeId: posted.tradeId }).catch(() => ({ records: [] }))).records.find(r => r.role === role)
    const buyerRecord = await recordOf(buyer, 'buyer')
    const sellerRecord = await recordOf(net.sellers[0], 'seller')
    const nodeRecords = (await Promise.all(net.nodes.map(async n => await recordOf(n, 'node')))).filter((r): r is PartyRecord => r !== undefined)
    try {
      const p = tradePhases(buyerRecord!, sellerRecord!, nodeRecords, [])
      say(`phases: ${PHASES.map(k => `${k} ${(p.phases[k] / 1000).toFixed(2)} s`).join(', ')}; total ${(p.totalMs / 1000).toFixed(2)} s`)
    } catch (err) {
      say(`phases: ${(err as Error).message}`)
    }
    if (!result.verified || !same || total !== deposit) throw new Error('the demo trade did not check out')
    ok = true
  } finally {
    if (o.keep && ok) {
      const sdte = cliCommand()
      o.out('\nThe testnet stays up (--keep). Try:')
      o.out(`  ${sdte} rpc --datadir ${net.buyers[0].datadir} trade_list`)
      o.out(`  ${sdte} rpc --datadir ${net.sellers[0].datadir} seller_datasets`)
      o.out(`  ${sdte} rpc --datadir ${net.nodes[0].datadir} node_enclave`)
      o.out(`Stop it with: kill ${net.daemons.map(d => d.child.pid).join(' ')} && ${sdte} devnet down --dir ${join(dir, 'devnet')}`)
      for (const d of net.daemons) d.child.unref()
    } else {
      say('stopping the testnet')
      await net.stop()
      if (o.dir === undefined) rmSync(dir, { recursive: true, force: true })
    }
  }
}

/**
 * How the user runs the CLI, for the hints: `sdte` when it is on PATH (installed), else this checkout's bin/sdte as
 * a path from the current directory (`npm start` in a checkout puts nothing on PATH).
 */
function cliCommand (): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    try {
      accessSync(join(dir, 'sdte'), constants.X_OK)
      return 'sdte'
    } catch {}
  }
  const path = relative(process.cwd(), join(ROOT, 'bin', 'sdte'))
  return path.startsWith('.') || path.startsWith('/') ? path : `./${path}`
}

export function parseAnalysis (s: string | undefined): ExampleAnalysis {
  const a = (s ?? 'Stats') as ExampleAnalysis
  if (!EXAMPLE_ANALYSES.includes(a)) throw new Error(`--analysis must be one of ${EXAMPLE_ANALYSES.join(', ')}`)
  return a
}
