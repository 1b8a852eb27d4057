// Attack: a stranger deletes a paid result. Any peer that knows a settled trade's id and a node's
// task id (both public on DTMC) asks the node for the result on /sdte/result/1 before the buyer
// does. The old node served whoever asked first, then marked the trade delivered and dropped the
// sealed task: the buyer, who paid, could never fetch its result.
// The defence: a result request is signed by DTMC's recorded buyer of the trade (the stranger is
// refused), serving never deletes, and the node drops its copy only on the buyer's signed ack or a
// retention time after the deadline (docs/threat-model.md, "A paid result stays available").
//
// Real parts: anvil, a relay, a buyer, a seller and a node as separate daemons; the stranger is an
// independent libp2p peer with its own Ethereum key.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet, getBytes } from 'ethers'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { LocalTestnet } from '../../daemon/tools/testnet.ts'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { sampleDataset, referenceOutput } from '../../enclave/examples.ts'
import { ARTIFACTS_DIR } from '../../contracts/tools/compile.ts'
import { createP2PHost } from '../../p2p/host/index.ts'
import { resultProtocol, signResultMessage } from '../../p2p/result/index.ts'
import type { RequestRefusedError } from '../../p2p/messages/exchange.ts'

const dir = mkdtempSync(join(tmpdir(), 'sdte-attack-stranger-'))
let net: LocalTestnet
const TAG = 'attack-stranger'
const dataset = sampleDataset(600, 31)

interface Record_ { role: string, state: string, reason?: string, taskId?: string }

test.before(async () => {
  net = await LocalTestnet.start({ dir, sellers: 1, nodes: 1 })
  const s = net.sellers[0]
  writeFileSync(join(s.datadir, 'data.csv'), dataset)
  await s.rpc.call('seller_addDataset', { path: join(s.datadir, 'data.csv'), tag: TAG, unitPrice: '5', policy: { mode: 'any' } })
  await waitFor('DHT announcement', async () => (await net.buyers[0].rpc.call<unknown[]>('net_findProviders', { key: `sdte:dataset:${TAG}` })).length >= 1, 30_000, 300)
})

test.after(async () => {
  await net?.stop()
  rmSync(dir, { recursive: true, force: true })
})

test('a stranger asking for a paid result first neither gets it served nor takes it from the buyer', async () => {
  const buyer = net.buyers[0]
  const node = net.nodes[0]
  const { tradeId } = await buyer.rpc.call<{ tradeId: string }>('buyer_postDemand', {
    tag: TAG, codePath: join(ARTIFACTS_DIR, 'HistogramFast.json'), nodes: 1, sellers: 1,
    sellerPrice: '10', sellerCap: '1000000', nodePrice: '1', nodeCap: '100000000', outputPrice: '5', outputCap: '2048', deadlineSeconds: 600
  })
  await waitFor('escrow', async () => {
    const s = (await buyer.rpc.call<{ records: Record_[] }>('trade_get', { tradeId })).records[0].state
    if (!['demanded', 'attesting', 'escrowed'].includes(s)) throw new Error(`the buyer went past escrow to ${s} before it could be paused`)
    return s === 'escrowed'
  }, 60_000, 50)
  // The buyer is paused (not gone): the stranger gets in first.
  buyer.child.kill('SIGSTOP')
  const stranger = await createP2PHost({ bootstrap: [net.relay.info.addresses[0]] }, { privateKey: await generateKeyPair('Ed25519') })
  await stranger.start()
  try {
    const nodeRecord = await waitFor('the node to settle the trade', async () => {
      const r = (await node.rpc.call<{ records: Record_[] }>('trade_get', { tradeId })).records.find(x => x.role === 'node')
      return r?.state === 'finalized' ? r : undefined
    }, 90_000, 200)
    await stranger.connect(node.info.addresses[0])
    const results = resultProtocol(stranger)
    // The stranger signs well-formed, fresh messages for the right network, trade and task, with its own key.
    const strangerKey = Wallet.createRandom().privateKey
    const domain = { chainId: net.network.chainId, dtmc: net.network.contracts.DTMC }
    const fields = { tradeId, taskId: nodeRecord.taskId! }
    const outcome = async (call: () => Promise<unknown>): Promise<string> => {
      try {
        const r = await call()
        return r instanceof Uint8Array ? `served ${r.length} bytes` : 'accepted'
      } catch (err) {
        return (err as RequestRefusedError).reason ?? String(err)
      }
    }
    assert.is(await outcome(async () => await results.fetch(node.info.peerId, signResultMessage('result-request', fields, domain, strangerKey))), 'NotBuyer', 'the stranger\'s fetch is refused')
    assert.is(await outcome(async () => { await results.ack(node.info.peerId, signResultMessage('result-ack', fields, domain, strangerKey)) }), 'NotBuyer', 'the stranger\'s ack is refused')
    // A request signed long ago (or far ahead) is refused whoever signed it.
    assert.is(await outcome(async () => await results.fetch(node.info.peerId, signResultMessage('result-request', fields, domain, strangerKey, Date.now() - 3600_000))), 'StaleRequest')
    const after = (await node.rpc.call<{ records: Record_[] }>('trade_get', { tradeId })).records.find(x => x.role === 'node')
    assert.is(after?.state, 'finalized', 'the stranger changed nothing on the node')
    assert.is((await node.rpc.call<{ tasks: number }>('node_enclave', {})).tasks, 1, 'the node still holds the sealed task')
  } finally {
    buyer.child.kill('SIGCONT')
    await stranger.stop()
  }
  const view = await waitFor('the buyer to get its result', async () => {
    const v = await buyer.rpc.call<{ records: Record_[] }>('trade_get', { tradeId })
    return v.records[0].state === 'delivered' ? v : undefined
  }, 60_000, 250)
  assert.is(view.records[0].state, 'delivered')
  const result = await buyer.rpc.call<{ result: string, verified: boolean }>('buyer_result', { tradeId })
  assert.ok(result.verified)
  assert.equal(getBytes(result.result), referenceOutput('Histogram', [dataset]))
  // The buyer acknowledged it: now, and only now, the node drops its copy.
  await waitFor('the node to take the buyer\'s ack', async () => (await node.rpc.call<{ records: Record_[] }>('trade_get', { tradeId })).records.find(x => x.role === 'node')?.state === 'delivered', 20_000, 200)
  assert.is((await node.rpc.call<{ tasks: number }>('node_enclave', {})).tasks, 0, 'the acknowledged task is dropped')
})

test.run()
