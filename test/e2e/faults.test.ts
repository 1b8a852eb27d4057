// Faults across separate daemons on a local testnet:
// - a node whose (attested) enclave signs a wrong result is outvoted, unpaid, and does not change the result;
// - a node killed with SIGKILL after the key and data delivery, and restarted, finishes its task;
// - a buyer killed with SIGKILL after escrow, and restarted, gets its result;
// - an analysis that uses a forbidden opcode fails with the opcode and its position told to the buyer, and a
//   sentence for the seller (`sdte watch` exits 1) and in the node's log;
// - a seller that goes offline before delivery leads to a refund at the deadline, less the data fee of the
//   seller that delivered (it claims it with its delivery receipts; `sdte watch` exits 1);
// - the test-only fault switch is refused outside a devnet.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { getBytes } from 'ethers'
import { LocalTestnet } from '../../daemon/tools/testnet.ts'
import { waitFor, runCli } from '../../daemon/tools/child-daemons.ts'
import { sampleDataset, referenceOutput } from '../../enclave/examples.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { rpc as anvilRpc } from '../../contracts/devnet-accounts.ts'
import { CLAIM_WINDOW } from '../../contracts/index.ts'
import { datasetKey } from '../../p2p/dht-keys.ts'

const dir = mkdtempSync(join(tmpdir(), 'sdte-faults-'))
let net: LocalTestnet
const TAG = 'faults'
const datasets = [sampleDataset(800, 21), sampleDataset(900, 22)]
const DEADLINE_SECONDS = 600

interface View {
  records: Array<{ role: string, state: string, reason?: string, payments?: Record<string, string>, refund?: string, heldFeesReturned?: string, payment?: string, fee?: string }>
  chain: { state: string, deposit: string, sellers: Array<{ account: string, fee: string }>, nResults: number, final: { count: number, members: number[], resultHash: string } | null, nodes: Array<{ payee: string, submitted: boolean }>, groups: Array<{ count: number, members: number[] }> }
}

async function post (): Promise<string> {
  const r = await net.buyers[0].rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag: TAG, codePath: join(ARTIFACTS_DIR, 'HistogramFast.json'), nodes: 3, sellers: 2,
    sellerPrice: '10', sellerCap: '1000000', nodePrice: '1', nodeCap: '100000000', outputPrice: '5', outputCap: '2048', deadlineSeconds: DEADLINE_SECONDS
  })
  return r.tradeId
}

async function buyerState (tradeId: string, states: string[], timeoutMs = 90_000): Promise<View> {
  return await waitFor(`buyer state ${states.join('|')}`, async () => {
    const v = await net.buyers[0].rpc.call<View>('trade_get', { tradeId })
    const s = v.records.find(r => r.role === 'buyer')?.state ?? ''
    if (['failed'].includes(s) && !states.includes(s)) throw new Error(`trade failed: ${v.records[0].reason}`)
    return states.includes(s) ? v : undefined
  }, timeoutMs, 200)
}

test.before(async () => {
  net = await LocalTestnet.start({
    dir,
    sellers: 2,
    nodes: 3,
    // node2 only polls, and slowly (no events), which leaves time to kill it between data delivery and
    // execution; node3 lies.
    nodeConfig: (i) => i === 1 ? { trade: { tickMs: 4000, events: false } } : i === 2 ? { enclave: { faultWrongResult: true } } : {}
  })
  for (const [i, s] of net.sellers.entries()) {
    const path = join(s.datadir, 'data.csv')
    writeFileSync(path, datasets[i])
    await s.rpc.call('seller_addDataset', { path, tag: TAG, unitPrice: '5', policy: { mode: 'any' } })
  }
  await waitFor('DHT announcements', async () => (await net.buyers[0].rpc.call<unknown[]>('net_findProviders', { key: datasetKey(TAG) })).length >= 2, 30_000, 300)
})

test.after(async () => {
  await net?.stop()
  rmSync(dir, { recursive: true, force: true })
})

test('a wrong result is outvoted and unpaid; a node killed after delivery and restarted finishes its task', async () => {
  const tradeId = await post()
  await buyerState(tradeId, ['escrowed', 'executing', 'submitted', 'finalized', 'delivered'])
  const node2 = net.nodes[1]
  // Both sellers' data complete in node2's enclave, and it has not run yet (it polls every 4 s): kill it.
  await waitFor('node2 to hold all data', () => (node2.output().match(/data received .*"complete":true/g) ?? []).length >= 2, 30_000, 20)
  const before = await node2.rpc.call<Array<{ state: string }>>('trade_list', { role: 'node' })
  assert.ok(before.every(t => t.state !== 'submitted'), 'node2 had not submitted when it was killed')
  await node2.stop('SIGKILL')
  const restarted = await net.add('node2', 'node', {})
  const view = await buyerState(tradeId, ['delivered'], 120_000)

  const final = view.chain.final!
  assert.is(final.count, 2, 'two honest enclaves agree')
  assert.equal(final.members, [0, 1, 2].filter(i => view.chain.nodes[i].payee.toLowerCase() !== net.nodes[2].info.ethAddress.toLowerCase()))
  const result = await net.buyers[0].rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
  assert.ok(result.verified)
  assert.equal(getBytes(result.result), referenceOutput('Histogram', datasets), 'the liar did not change the result')

  const payments = view.records[0].payments ?? {}
  assert.is(payments[net.nodes[2].info.ethAddress.toLowerCase()], undefined, 'the outvoted node is not paid')
  assert.ok(BigInt(payments[restarted.info.ethAddress.toLowerCase()] ?? '0') > 0n, 'the restarted node is paid')
  assert.ok(BigInt(payments[net.nodes[0].info.ethAddress.toLowerCase()] ?? '0') > 0n)
  // Its own submission can be the one that settles the trade (DTMC settles once a majority is
  // certain): its record then reaches finalized on its next tick, which may come after the buyer's.
  await waitFor('the restarted node went on from its sealed task', async () => {
    const nodeTrades = await restarted.rpc.call<Array<{ tradeId: string, state: string }>>('trade_list', { role: 'node' })
    return ['finalized', 'delivered'].includes(nodeTrades.find(t => t.tradeId === tradeId)?.state ?? '') ? true : undefined
  }, 30_000, 300)
})

test('a buyer killed right after escrow and restarted goes on to its checked result', async () => {
  const tradeId = await post()
  await buyerState(tradeId, ['escrowed', 'executing', 'submitted'])
  await net.buyers[0].stop('SIGKILL')
  await net.add('buyer1', 'buyer', {})
  const view = await buyerState(tradeId, ['delivered'], 120_000)
  assert.ok(view.chain.final !== null)
  const result = await net.buyers[0].rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
  assert.ok(result.verified)
  assert.equal(getBytes(result.result), referenceOutput('Histogram', datasets))
})

// analyze() that CALLs: five PUSH1, PUSH2 0x1234, GAS, then CALL at byte 14 of the code.
const CALLS_OUT = '0x' + '6000'.repeat(5) + '611234' + '5a' + 'f1' + '00'

test('an analysis that CALLs: the buyer, the seller and the node operator are each told why, with the opcode and its position for the buyer', async () => {
  const { tradeId } = await net.buyers[0].rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag: TAG, code: CALLS_OUT, nodes: 3, sellers: 2,
    sellerPrice: '10', sellerCap: '1000000', nodePrice: '1', nodeCap: '100000000', outputPrice: '5', outputCap: '2048', deadlineSeconds: DEADLINE_SECONDS
  })
  const view = await buyerState(tradeId, ['failed'], 120_000) as View & { explanation: { kind: string, summary: string, buyer: string, seller: string, node: string } }
  assert.is(view.chain.state, 'settled')
  assert.is(view.explanation.kind, 'forbidden_opcode')
  const buyer = view.records.find(r => r.role === 'buyer')!
  // The buyer's daemon opened the enclave's diagnosis: the opcode and where it is.
  assert.match(buyer.reason ?? '', /CALL at position 14 \(byte offset 0xe/)
  assert.match(view.explanation.buyer, /opcode the enclave refuses.*CALL at position 14/)
  // rpc_discover tells the truth about it: the result, diagnosis and explanation included, matches trade_get's schema.
  const { MethodCallValidator } = createRequire(import.meta.url)('@open-rpc/schema-utils-js') as { MethodCallValidator: new (doc: unknown) => { validate: (method: string, params: unknown) => unknown } }
  const discover = new MethodCallValidator(await net.buyers[0].rpc.call('rpc_discover', {}))
  assert.equal(discover.validate('trade_get', { tradeId, result: view }), [], 'trade_get\'s result matches its served schema')
  const watched = await runCli(['watch', '--datadir', net.buyers[0].datadir, tradeId])
  assert.is(watched.code, 1, watched.stderr)
  assert.match(watched.stdout, /why: The trade settled with status 3 \(forbidden opcode\).*CALL at position 14/)
  assert.match(watched.stdout, /buyer: failed \(Your analysis delivered no output: .*CALL at position 14/)
  // The seller: its data did not leave the enclave, it is paid; its watch fails too (the trade did).
  const seller = await waitFor('the seller\'s part ended', async () => {
    const v = await net.sellers[0].rpc.call<View>('trade_get', { tradeId })
    const r = v.records.find(x => x.role === 'seller')
    return r?.state === 'finalized' ? r : undefined
  }, 60_000, 300)
  assert.match(seller.reason ?? '', /used an opcode the enclave refuses.*nothing of your data left the enclave\. You are paid your data fee/)
  const sellerWatch = await runCli(['watch', '--json', '--datadir', net.sellers[0].datadir, tradeId])
  assert.is(sellerWatch.code, 1, sellerWatch.stderr)
  const explained = sellerWatch.stdout.trimEnd().split('\n').map(l => JSON.parse(l)).find(e => e.event === 'explanation')
  assert.is(explained?.kind, 'forbidden_opcode')
  // The node operator's log: the status in words, and that the details went to the buyer only.
  const node = net.nodes[0]
  await waitFor('the node logged the end', () => /Your enclave stopped the buyer's analysis: the analysis used an opcode the enclave refuses/.test(node.output()) ? true : undefined, 30_000, 200)
  assert.not.match(node.output(), /position 14/, 'the position depends on the data: the node does not learn it')
  // The buyer's log has its own sentence, with the position.
  assert.match(net.buyers[0].output(), /trade ended: Your analysis delivered no output: .*CALL at position 14/)
})

test('a seller that goes offline before delivery: refund at the deadline, the seller that delivered claims its fee', async () => {
  const tradeId = await post()
  await buyerState(tradeId, ['attesting', 'escrowed'])
  const seller2 = net.sellers[1]
  seller2.child.kill('SIGSTOP')
  try {
    const escrowed = await buyerState(tradeId, ['escrowed', 'executing'])
    const deposit = BigInt(escrowed.chain.deposit)
    // The first seller has delivered to every enclave (and holds their receipts) before the deadline passes.
    await waitFor('seller 1 delivered', async () => {
      const v = await net.sellers[0].rpc.call<View>('trade_get', { tradeId })
      return v.records.find(x => x.role === 'seller')?.state === 'executing' ? true : undefined
    }, 60_000, 300)
    // Past the deadline on the chain's clock.
    await anvilRpc(net.network.rpcUrl, 'evm_increaseTime', [DEADLINE_SECONDS + 10])
    await anvilRpc(net.network.rpcUrl, 'evm_mine', [])
    const view = await buyerState(tradeId, ['refunded'], 60_000)
    assert.is(view.chain.state, 'refunded')
    assert.is(view.chain.nResults, 0, 'nobody could run without the second seller\'s data')
    // Issue 10 property 1 (a rule change): the refund holds the sellers' data fees for DTMC.CLAIM_WINDOW. The
    // first seller delivered to every enclave and holds their receipts, so it claims its fee; the second
    // delivered nothing, and its fee goes back to the buyer once the window is over (releaseUnclaimed).
    const fees = view.chain.sellers.map(s => BigInt(s.fee))
    assert.is(BigInt(view.records[0].refund ?? '0'), deposit - fees[0] - fees[1], 'the deposit came back but the data fees')
    const seller1 = await waitFor('seller 1 paid by its delivery claim', async () => {
      const v = await net.sellers[0].rpc.call<View>('trade_get', { tradeId })
      const r = v.records.find(x => x.role === 'seller')
      return r?.state === 'refunded' ? r : undefined
    }, 60_000, 300)
    assert.ok(fees.includes(BigInt(seller1.fee ?? '-1')))
    assert.is(BigInt(seller1.payment ?? '0'), BigInt(seller1.fee ?? '-1'), 'the seller that delivered is paid its data fee')
    // Past the claim window the buyer's daemon releases the unclaimed fee to itself: nobody else would.
    const unclaimed = fees.find(f => f !== BigInt(seller1.fee ?? '-1')) ?? -1n
    await anvilRpc(net.network.rpcUrl, 'evm_increaseTime', [CLAIM_WINDOW + 10])
    await anvilRpc(net.network.rpcUrl, 'evm_mine', [])
    const returned = await waitFor('the held fee back to the buyer', async () => {
      const v = await net.buyers[0].rpc.call<View>('trade_get', { tradeId })
      return v.records[0].heldFeesReturned
    }, 60_000, 300)
    assert.is(BigInt(returned), unclaimed, 'the fee of the seller that delivered nothing, to the wei')
    assert.is(BigInt(view.records[0].refund ?? '0') + BigInt(returned), deposit - BigInt(seller1.fee ?? '-1'), 'the deposit back but the fee the seller earned')
    assert.match(net.buyers[0].output(), /held data fees returned/)
    // The operator's view: `sdte watch` prints the trade to its end and fails, as the trade did.
    const watched = await runCli(['watch', '--datadir', net.buyers[0].datadir, tradeId])
    assert.is(watched.code, 1, watched.stderr)
    assert.match(watched.stdout, /buyer escrowed/)
    assert.match(watched.stdout, /buyer: refunded \(Your trade was refunded because none of the 3 nodes submitted a result by the deadline/)
    assert.match(watched.stdout, /why: The trade was refunded: none of the 3 nodes submitted a result/)
    const explained = await net.buyers[0].rpc.call<{ explanation: { kind: string } }>('trade_get', { tradeId })
    assert.is(explained.explanation.kind, 'refunded_no_result')
  } finally {
    seller2.child.kill('SIGCONT')
  }
})

test('the fault switch is refused outside a devnet', async () => {
  const network = JSON.parse(readFileSync(net.networkPath, 'utf8'))
  const path = join(dir, 'not-a-devnet.json')
  writeFileSync(path, JSON.stringify({ ...network, devnet: false }))
  const d = join(dir, 'liar')
  copyFileSync(join(net.networkPath, '..', 'attestation-root.key'), join(dir, 'root.key'))
  mkdirSync(d)
  writeFileSync(join(d, 'config.json'), JSON.stringify({ keys: { scryptN: 1024 }, enclave: { faultWrongResult: true, attestationKeyFile: join(dir, 'root.key') } }))
  const r = await runCli(['daemon', '--datadir', d, '--role', 'node', '--network', path])
  assert.is(r.code, 1)
  assert.match(r.stderr, /test-only fault switch/)
})

test.run()
