// A private trade between separate daemons (issue 15, docs/contracts.md "Private datasets", docs/enclave.md "Private
// mode"): a seller lists a dataset in mode private (a budget of 1.5 epsilon, clamps on three columns); a buyer runs
// the example private analysis (PrivateStats, 1 epsilon) on three nodes. The seller delivers its clamps and a
// per-trade noise secret inside the wrapped data key; each node runs with the epsilon it read on DTMC. Then: the
// three enclaves agree (one result group of 3), the result is near the exact statistics but not them (noise), the
// budget on chain dropped by exactly the trade's epsilon, a second trade of 1 epsilon (over the 0.5 left) gets no
// offer, and an analysis that returns its call data gets nothing of the records.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AbiCoder, getBytes, hexlify, keccak256 } from 'ethers'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { LocalTestnet } from '../../daemon/tools/testnet.ts'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { referenceOutput, sampleDataset } from '../../enclave/examples.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { createP2PHost } from '../../p2p/host/index.ts'
import { offerProtocol } from '../../p2p/offer/index.ts'
import { demandHashOf, signDemand, type Demand, type DemandTerms } from '../../p2p/demand/index.ts'
import { datasetKey, type RequestRefusedError } from '../../p2p/index.ts'
import { fundedAccount } from '../helpers/attacker.ts'
import { findIn, searchChain, searchLogs, searchStore, type Secret } from '../helpers/secrets.ts'

const abi = AbiCoder.defaultAbiCoder()
const dir = mkdtempSync(join(tmpdir(), 'sdte-e2e-private-'))
const TAG = 'e2e-private'
const UNIT_PRICE = 10n
const SELLER_CAP = 1_000_000n
const NODE_PRICE = 1n
const NODE_CAP = 200_000_000n
const OUTPUT_PRICE = 12n
const OUTPUT_CAP = 4096n
/** Micro-epsilon: the dataset's budget, and what PrivateStats spends (exactly 1 epsilon, its calls summed). */
const BUDGET = 1_500_000n
const EPSILON = 1_000_000n
const data = sampleDataset(2000, 21)
const artifactPath = join(ARTIFACTS_DIR, 'PrivateStats.json')
const code = getBytes(JSON.parse(readFileSync(artifactPath, 'utf8')).deployedBytecode)
// analyze(bytes[]) that returns abi.encode(bytes msg.data): all the call data it was given
// (test/attacks/private-analysis-reads-raw-records.test.ts).
const ECHO_CALLDATA = '0x36600060403760206000523660205236604001' + '6000f3'

let net: LocalTestnet
let datasetId = ''
/** The private result's plaintext, for the search of the last test. */
let privateResult: Uint8Array | undefined

interface BuyerView {
  records: Array<{ state: string, reason?: string, rejected?: unknown }>
  chain: { final: { count: number, members: number[], resultHash: string } }
}

test.before(async () => {
  net = await LocalTestnet.start({ dir, sellers: 1, nodes: 3 })
  const seller = net.sellers[0]
  const path = join(seller.datadir, 'data.csv')
  writeFileSync(path, data)
  // The sample layout's ranges (enclave/examples.ts): value 0..1099, x -500..499, y = 3x + 7 ± 50; whole numbers.
  const listed = await seller.rpc.call<{ datasetId: string }>('seller_addDataset', {
    path, tag: TAG, unitPrice: UNIT_PRICE.toString(),
    policy: {
      mode: 'private',
      epsilonBudget: BUDGET.toString(),
      clamps: [
        { column: 1, decimals: 0, lower: '0', upper: '1100' },
        { column: 2, decimals: 0, lower: '-500', upper: '500' },
        { column: 3, decimals: 0, lower: '-1600', upper: '1600' }
      ]
    }
  })
  datasetId = listed.datasetId
  await waitFor('DHT announcement', async () => (await net.buyers[0].rpc.call<unknown[]>('net_findProviders', { key: datasetKey(TAG) })).length >= 1, 30_000, 300)
})

test.after(async () => {
  await net?.stop()
  if (process.env.SDTE_KEEP_TEST_DIRS === undefined) rmSync(dir, { recursive: true, force: true })
})

/** A private trade by the testnet's buyer, to its end; returns its view and (when delivered) its result. */
async function trade (p: { code?: string, codePath?: string, epsilon: bigint }): Promise<{ view: BuyerView, result: Uint8Array }> {
  const buyer = net.buyers[0]
  const { tradeId } = await buyer.rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag: TAG, ...(p.code !== undefined ? { code: p.code } : { codePath: p.codePath }), nodes: 3, sellers: 1,
    sellerPrice: '20', sellerCap: SELLER_CAP.toString(), nodePrice: NODE_PRICE.toString(), nodeCap: NODE_CAP.toString(),
    outputPrice: OUTPUT_PRICE.toString(), outputCap: OUTPUT_CAP.toString(), deadlineSeconds: 600, epsilon: p.epsilon.toString()
  })
  const view = await waitFor('the trade\'s end', async () => {
    const v = await buyer.rpc.call<BuyerView>('trade_get', { tradeId })
    return ['delivered', 'failed', 'refunded'].includes(v.records[0].state) ? v : undefined
  }, 180_000, 250)
  assert.is(view.records[0].state, 'delivered', `${view.records[0].reason ?? ''} ${JSON.stringify(view.records[0].rejected)}`)
  const r = await buyer.rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
  assert.ok(r.verified, 'the result hash is the final one on DTMC')
  return { view, result: getBytes(r.result) }
}

async function budgetOnChain (): Promise<{ spent: bigint, remaining: bigint }> {
  const reader = await fundedAccount(net.network)
  try {
    const o = await reader.chain.cisc.offer(BigInt(datasetId))
    return { spent: o.epsilonSpent, remaining: await reader.chain.cisc.remainingBudget(BigInt(datasetId)) }
  } finally {
    reader.chain.close()
  }
}

const near = (got: bigint, want: bigint, tol: bigint, what: string): void =>
  assert.ok((got > want ? got - want : want - got) <= tol, `${what}: ${got} vs ${want} (tolerance ${tol})`)

test('PrivateStats on a private dataset: three nodes agree on a noisy result near the truth; the budget drops by its epsilon', async () => {
  assert.equal(await budgetOnChain(), { spent: 0n, remaining: BUDGET })
  const { view, result } = await trade({ codePath: artifactPath, epsilon: EPSILON })
  privateResult = result
  assert.is(view.chain.final.count, 3, 'all three enclaves are in the one result group (the same noise, bit for bit)')
  assert.equal(view.chain.final.members.length, 3)
  const [count, mean, hist, median, n, slope] = abi.decode(['int256', 'int256', 'int256[]', 'int256', 'int256', 'int256', 'int256'], result).toArray() as [bigint, bigint, bigint[], bigint, bigint, bigint]
  const stats = abi.decode(['uint256', 'int256', 'int256', 'int256', 'int256', 'int256'], referenceOutput('Stats', [data])).toArray() as bigint[]
  const trueCounts = [...abi.decode(['uint256[]'], referenceOutput('Histogram', [data]))[0] as bigint[]]
  const trueMedian = (abi.decode(['uint256', 'int256'], referenceOutput('Median', [data]))[1] as bigint) / 1_000_000n
  const trueFit = abi.decode(['uint256', 'int256', 'int256'], referenceOutput('LinearFit', [data])).toArray() as bigint[]
  console.log(`  private result: count ${count} (exact ${stats[0]}), mean×1e6 ${mean} (exact ${stats[4]}), median ${median} (exact ${trueMedian}), n ${n}, slope×1e6 ${slope} (exact ${trueFit[1]}), ` +
    `histogram ${hist.join(' ')} (exact ${trueCounts.join(' ')})`)
  // Tolerances: each at least 15 scales b of its discrete Laplace noise, P(|noise| > 15 b) = e^-15 ≈ 3e-7 per value
  // (about 5e-6 for the 15 values of a run: the noise key is random per trade here, so that is the flake rate), and
  // far below what the answer would be without the data (a count of 0, a mean of 0). The median is the exponential
  // mechanism's: 11 candidates (110) off the truth weighs about e^-40 against it.
  near(count, stats[0], 150n, 'count (ε 0.1: scale 10)')
  near(mean, stats[4], 45_000_000n, 'mean ×10^6 (ε 0.2: count scale 10, sum scale 5500 over 2000 records: 2.75 units)')
  assert.is(hist.length, 10)
  hist.forEach((c, i) => near(c, trueCounts[i], 75n, `bucket ${i} (ε 0.2: scale 5)`))
  near(median, trueMedian, 110n, 'median (candidates 0, 10, .., 1100)')
  near(n, stats[0], 250n, 'linear fit n (ε 0.06: scale 16.7)')
  near(slope, trueFit[1], 1_000_000n, 'slope ×10^6 (exact about 3; noise of 5 statistics at ε 0.06 each, observed within ±0.2)')
  // P(no noise on the count and on every bucket) is below 0.05 × 0.1^10.
  assert.not.equal([count, ...hist], [stats[0], ...trueCounts], 'the result is the exact statistics: no noise')
  assert.equal(await budgetOnChain(), { spent: EPSILON, remaining: BUDGET - EPSILON }, 'CISC charged the trade\'s epsilon')
})

test('a trade over the remaining budget gets no offer from the seller; one within it does', async () => {
  const host = await createP2PHost({ bootstrap: [net.relay.info.addresses[0]] }, { privateKey: await generateKeyPair('Ed25519') })
  await host.start()
  const asker = await fundedAccount(net.network)
  try {
    const offers = offerProtocol(host)
    const seller = net.sellers[0]
    await host.connect(seller.info.addresses[0])
    const ask = async (over: Partial<DemandTerms>): Promise<Demand> => {
      const d = signDemand({
        chainId: net.network.chainId, dtmc: net.network.contracts.DTMC.toLowerCase(), buyerPeer: host.peerId, tag: TAG,
        codeHash: keccak256(code), nodes: 3, sellers: 1, sellerPrice: 20n, sellerCap: SELLER_CAP, nodePrice: NODE_PRICE, nodeCap: NODE_CAP,
        outputPrice: OUTPUT_PRICE, outputCap: OUTPUT_CAP, expiresAt: Math.floor(Date.now() / 1000) + 120, tradeSeconds: 600, ...over
      }, { address: asker.wallet.address, privateKey: asker.wallet.privateKey })
      const { signature: _s, ...unsigned } = d
      await asker.chain.bdbc.postDemand(demandHashOf(unsigned))
      return d
    }
    const answer = async (d: Demand): Promise<string> => {
      try { return (await offers.solicit(seller.info.peerId, d)).kind } catch (err) { return (err as RequestRefusedError).reason ?? String(err) }
    }
    const left = BUDGET - EPSILON
    assert.is(await answer(await ask({ epsilon: EPSILON })), 'NoOffer', `1 epsilon is over the ${left} micro-epsilon left`)
    assert.is(await answer(await ask({ epsilon: left + 1n })), 'NoOffer', 'one micro-epsilon over the budget')
    assert.is(await answer(await ask({ epsilon: 0n })), 'NoOffer', 'a private dataset takes no trade without an epsilon')
    assert.is(await answer(await ask({ epsilon: left })), 'seller', 'exactly what is left is offered')
  } finally {
    asker.chain.close()
    await host.stop()
  }
})

test('an analysis that returns its call data gets nothing of the private records', async () => {
  const epsilon = 400_000n
  const { view, result } = await trade({ code: ECHO_CALLDATA, epsilon })
  assert.is(view.chain.final.count, 3)
  // The output is the call data the analysis got: analyze(bytes[]) with no input (selector, offset, length 0), nothing else.
  assert.is(result.length, 4 + 64, `the analysis was given ${hexlify(result.subarray(0, 96))}…`)
  assert.equal([...result.subarray(4 + 32)], new Array(32).fill(0), 'an empty array of inputs')
  const text = Buffer.from(result)
  for (const line of new TextDecoder().decode(data).split('\n').slice(0, 50)) {
    if (line !== '') assert.not.ok(text.includes(Buffer.from(line)), `a raw line reached the buyer: ${line}`)
  }
  assert.equal(await budgetOnChain(), { spent: EPSILON + epsilon, remaining: BUDGET - EPSILON - epsilon })
})

test('neither the records nor the private result are in any log, store or transaction', async () => {
  assert.ok(privateResult !== undefined, 'the first test ran')
  // The body of the data (a record is short: a whole block of lines is what must not appear), and the result.
  const lines = new TextDecoder().decode(data).split('\n')
  const secrets: Secret[] = [
    { name: 'records 100..120', bytes: new TextEncoder().encode(lines.slice(100, 120).join('\n')) },
    { name: 'private result', bytes: privateResult }
  ]
  const hits = await searchChain(net.network.rpcUrl, secrets)
  await Promise.all(net.daemons.map(async d => await d.stop('SIGTERM')))
  for (const d of net.daemons) {
    hits.push(...searchLogs(d.datadir, secrets))
    // The seller's datadir holds the dataset file itself (data.csv): its store and logs are searched, not the file.
    hits.push(...await searchStore(d.datadir, secrets))
  }
  assert.equal(hits, [])
  assert.ok(findIn(Buffer.from(`x${Buffer.from(privateResult).toString('hex')}y`), secrets, 'probe').length > 0, 'the search finds what it looks for')
})

test.run()
