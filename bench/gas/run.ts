// Gas of each call of a trade's life on a real anvil, for 1, 3, 5 and 7 nodes and 1 and 3 sellers:
// openTrade, each node's commitResult, each reveal (submitResult; the last one settles the trade: no finalize call
// on the honest path),
// every party's withdraw, the buyer's rating of each seller, and the total. Prints the tables and writes them into BENCHMARKS.md's "## Gas" section.
//
//   node bench/gas/run.ts            (add --no-write to only print)
import { startChain, makeMarket, openTrade, commit, reveal, account, rand32, type Chain } from '../../contracts/tools/market.ts'
import { deploy } from '../../contracts/tools/deploy.ts'
import { fundDevAccount } from '../../contracts/devnet-accounts.ts'
import { MAX_NODES, MAX_SELLERS } from '../../contracts/client.ts'
import { Wallet, parseEther } from 'ethers'
import { writeBenchmarkSections, BENCHMARKS_FILE as BENCHMARKS } from '../benchmarks-md.ts'

const NODES = [1, 3, 5, 7]
const SELLERS = [1, 3]
const COMMAND = 'node bench/gas/run.ts'

interface Row {
  nodes: number
  sellers: number
  open: bigint
  commitEach: bigint // mean commitResult (every node commits)
  commits: bigint
  submitFirst: bigint
  submitFurther: bigint // mean of those between the first and the last (0 with fewer than three nodes)
  submitSettling: bigint // the last submitResult, which settles the trade
  submits: bigint
  withdraws: bigint
  withdrawEach: bigint
  rates: bigint
  total: bigint
}

async function measureTrade (chain: Chain, nodes: number, sellers: number): Promise<Row> {
  const m = await makeMarket(chain, sellers, nodes)
  const t = await openTrade(m)
  // Every node commits; then (reveals open at once) nodes reveal in index order until the trade settles: on the
  // reveal after a strict majority (or the last).
  let commits = 0n
  for (let i = 0; i < nodes; i++) commits += (await commit(m, t, i)).gasUsed
  const submitGas: bigint[] = []
  const reporting = Math.min(nodes, Math.floor(nodes / 2) + 2)
  for (let i = 0; i < reporting; i++) submitGas.push((await reveal(m, t, i)).gasUsed)
  if ((await m.buyer.client.dtmc.trade(t.tradeId))?.state !== 'settled') throw new Error('the last submission did not settle the trade')
  let withdraws = 0n
  const parties = [m.buyer, ...m.sellers, ...m.nodes.slice(0, reporting)]
  // DTMC sends payouts at once; a party withdraws only what a refused send left credited (none here).
  for (const a of parties) if (await a.client.dtmc.creditOf(a.address) > 0n) withdraws += (await a.client.dtmc.withdraw()).receipt.gasUsed
  let rates = 0n
  for (let i = 0; i < sellers; i++) rates += (await m.buyer.client.dtmc.rate(t.tradeId, i, 5, 'good data')).gasUsed
  const submits = submitGas.reduce((a, b) => a + b, 0n)
  const further = submitGas.slice(1, -1)
  return {
    nodes,
    sellers,
    open: t.receipt.gasUsed,
    commitEach: commits / BigInt(nodes),
    commits,
    submitFirst: submitGas[0],
    submitFurther: further.length > 0 ? further.reduce((a, b) => a + b, 0n) / BigInt(further.length) : 0n,
    submitSettling: submitGas[reporting - 1],
    submits,
    withdraws,
    withdrawEach: withdraws / BigInt(parties.length),
    rates,
    total: t.receipt.gasUsed + commits + submits + withdraws + rates
  }
}

async function measureSetup (chain: Chain): Promise<Array<[string, bigint]>> {
  const deployer = new Wallet(Wallet.createRandom().privateKey)
  await fundDevAccount(chain.anvil.rpcUrl, deployer.address, parseEther('10'))
  const d = await deploy({ rpcUrl: chain.anvil.rpcUrl, signer: deployer.privateKey, attestationRoot: chain.root.address, measurements: [rand32()] })
  const a = await account(chain)
  const regSeller = await a.client.cisc.registerSeller('12D3KooWQx9ZbTXtGjGqhH8d3CmCzsnUxzjpECVpvV2CvLLbPV8d')
  const list = await a.client.cisc.listDataset({ tag: 'census-2020', size: 1_000_000n, unitPrice: 1000n, commitment: rand32(), policy: { allowedCodeHashes: [rand32(), rand32()], anyCode: false, outputCap: 4096n, minOutputPrice: 10n } })
  const regNode = await a.client.cisc.registerNode({ peerId: '12D3KooWQx9ZbTXtGjGqhH8d3CmCzsnUxzjpECVpvV2CvLLbPV8d', measurement: rand32(), pricePerGas: 10n, maxGas: 30_000_000n })
  const demand = await a.client.bdbc.postDemand(rand32())
  return [
    ['deploy CISC', d.gas.CISC],
    ['deploy BDBC', d.gas.BDBC],
    ['deploy DTMC', d.gas.DTMC],
    ['CISC.registerSeller (52-char peer id)', regSeller.gasUsed],
    ['CISC.listDataset (2 allowed code hashes)', list.receipt.gasUsed],
    ['CISC.registerNode', regNode.gasUsed],
    ['BDBC.postDemand', demand.gasUsed]
  ]
}

const fmt = (n: bigint): string => n.toLocaleString('en-US')

function tables (setup: Array<[string, bigint]>, rows: Row[]): string {
  const lines: string[] = []
  lines.push('Per trade, honest path (every node commits; then nodes reveal the same result in turn; the reveal after a strict majority settles the trade, so nobody calls finalize and later nodes do not reveal; DTMC sends every payout with the settlement, so a party withdraws only what a refused send left credited (none here); the buyer rates every seller):', '')
  lines.push('| nodes | sellers | openTrade | commitResult each | reveal first | reveal each further | settling reveal (last) | withdraw each | rate each | total |')
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of rows) {
    lines.push(`| ${r.nodes} | ${r.sellers} | ${fmt(r.open)} | ${fmt(r.commitEach)} | ${r.nodes > 1 ? fmt(r.submitFirst) : '–'} | ${r.nodes > 2 ? fmt(r.submitFurther) : '–'} | ${fmt(r.submitSettling)} | ${fmt(r.withdrawEach)} | ${fmt(r.rates / BigInt(r.sellers))} | **${fmt(r.total)}** |`)
  }
  lines.push('', 'Once per network or per participant:', '')
  lines.push('| call | gas |', '|---|---:|')
  for (const [name, gas] of setup) lines.push(`| ${name} | ${fmt(gas)} |`)
  return lines.join('\n')
}

function marginals (rows: Row[]): string {
  const find = (n: number, s: number): Row => rows.find(r => r.nodes === n && r.sellers === s)!
  const perNodeOpen = (find(7, 1).open - find(1, 1).open) / 6n
  const perSellerOpen = (find(1, 3).open - find(1, 1).open) / 2n
  const perNodeTotal = (find(7, 1).total - find(1, 1).total) / 6n
  const perSellerTotal = (find(1, 3).total - find(1, 1).total) / 2n
  return [
    `Marginal costs: each node adds about ${fmt(perNodeOpen)} gas to openTrade (its quote: one ecrecover, the keccaks`,
    'of taskId, reportData and quoteDigest, a measurement lookup, an event; nothing stored: its payee and enclave are in',
    `the trade's hashed Facts) and about ${fmt(perNodeTotal)} to the whole trade (with its commitResult, its reveal, its payout`,
    'at settlement and two more words of Facts in every call that takes them);',
    `each seller adds about ${fmt(perSellerOpen)} to openTrade (a CISC offer read that enforces the seller's policy, an event)`,
    `and about ${fmt(perSellerTotal)} to the whole trade (with its payout and rating). The first reveal`,
    'pays for the new result group (two slots); later identical results only update one packed slot. Each',
    'commitResult is a transaction of its own (21,000) that updates the trade\'s first slot and fills one slot with the',
    'node\'s commitment; it and every later call but withdraw carry the trade\'s Facts (checked against their stored hash).'
  ].join('\n')
}

function writeSection (body: string): void {
  writeBenchmarkSections([`## Gas\n\n${body}\n`])
}

const chain = await startChain()
try {
  const started = Date.now()
  const rows: Row[] = []
  for (const s of SELLERS) for (const n of NODES) rows.push(await measureTrade(chain, n, s))
  rows.sort((a, b) => a.sellers - b.sellers || a.nodes - b.nodes)
  const setup = await measureSetup(chain)
  const body = [
    `Command: \`${COMMAND}\` (anvil from @foundry-rs/anvil, solc 0.8.37 with the optimizer at 200 runs, cancun).`,
    `Gas used per transaction as the receipts report it; calldata with random hashes varies by a few dozen gas.`,
    `DTMC bounds every trade by MAX_SELLERS = ${MAX_SELLERS} and MAX_NODES = ${MAX_NODES}, so no call loops over more.`,
    '',
    tables(setup, rows),
    '',
    marginals(rows)
  ].join('\n')
  console.log(body)
  console.log(`\n(${((Date.now() - started) / 1000).toFixed(1)} s)`)
  if (!process.argv.includes('--no-write')) {
    writeSection(body)
    console.log(`wrote the "## Gas" section of ${BENCHMARKS}`)
  }
} finally {
  await chain.stop()
}
