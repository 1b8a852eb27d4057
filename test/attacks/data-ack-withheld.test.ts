// Attack (review of issue 13's /sdte/data/2): a seller sends its whole dataset and data-done, takes the node's
// status with the enclave's delivery receipt, and then neither acknowledges nor ends its side: it stays silent.
// The node's handler waited for the data-ack bounded only by the limits of a whole delivery (the per-message
// timeout, sized for a 4 MiB chunk on a slow link, and the exchange deadline, 15 min): the stream, one of the
// connection's inbound data streams, and its handler were held that long for an answer that, from an honest
// seller, is one signature check, one store write and one signature away.
// The defence: the wait for the ack has its own short bound (DATA_ACK_TIMEOUT_MS, option ackTimeoutMs). When
// it passes, the delivery is what it is when a seller ends without an ack: complete in the enclave, its receipt
// unacknowledged, the run not allowed; the stream is reset. A later delivery stream of the seller finds it
// complete, gets the receipt again and acknowledges it there.
//
// Observed by conditions, not the clock: the node runs with a delivery (message and exchange) limit of 10 min
// and a short ack bound; the silent seller's own read of the node's next frame waits at most WAIT_MS (60 s),
// far below 10 min. Before the fix that read timed out with the node's stream still open; after it, the node
// ended the stream first. The node is the real p2p/data protocol over a real enclave (test/helpers/enclave.ts),
// with the trusted node's handlers minus the chain checks of the open (not this attack's subject).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createP2PHost, dataProtocol, messageChannel, type P2PHost } from '../../p2p/index.ts'
import { DataStatus, dataConstants, type DataOpen, type DeliveryState } from '../../p2p/data/index.ts'
import { encryptDataset, signChunk, signDataKeyDelivery, signReceiptAck, wrapDataKey, type EnclaveHost } from '../../enclave/index.ts'
import { sampleDataset } from '../../enclave/examples.ts'
import { ResultStatus } from '../../contracts/formats.ts'
import { artifactCode, buyerSetup, domain, rejectsWith, seller, startEnclave, type BuyerTask } from '../helpers/enclave.ts'
import { waitFor } from '../helpers/daemon-process.ts'

/** The node's limits of a whole delivery: far longer than the test, so only the ack's own bound can end the wait. */
const DELIVERY_MS = 10 * 60_000
/** The node's bound on the seller's ack in this test (the default is DATA_ACK_TIMEOUT_MS). */
const ACK_MS = 5_000
/** How long the silent seller waits for the node to end the stream: well below DELIVERY_MS, well above ACK_MS. */
const WAIT_MS = 60_000

let enclave: EnclaveHost
const hosts: P2PHost[] = []
test.after(async () => {
  await Promise.allSettled(hosts.map(async h => { await h.stop() }))
  await enclave?.close()
})

async function host (): Promise<P2PHost> {
  const h = await createP2PHost({ bootstrap: [] }, { privateKey: await generateKeyPair('Ed25519') })
  hosts.push(h)
  await h.start()
  return h
}

const stateOf = (s: { nextChunk: number, complete: boolean, receipt?: string, acked?: boolean, invalid?: string }): DeliveryState =>
  ({ nextChunk: s.invalid === undefined ? s.nextChunk : 0, complete: s.complete, receipt: s.receipt, acked: s.acked })

/** The trusted node's data handlers (daemon/roles/trusted-node), on the enclave, without the open's chain checks; returns the protocol id. */
async function serveData (node: P2PHost, acks: string[]): Promise<string> {
  const data = dataProtocol(node, { messageTimeoutMs: DELIVERY_MS, exchangeTimeoutMs: DELIVERY_MS, ackTimeoutMs: ACK_MS })
  await data.start({
    open: async (_remote, req) => {
      const task = (await enclave.tasks()).find(t => t.taskId === req.taskId)
      const st = task?.sellers.find(s => s.sellerIndex === req.sellerIndex)
      return st === undefined ? { nextChunk: 0, complete: false } : stateOf(st)
    },
    receive: async (req, _from, chunks) => stateOf(await enclave.deliverData(req.taskId, {
      sellerIndex: req.sellerIndex, commitment: req.commitment, wrappedKey: req.wrappedKey, sellerSignature: req.sellerSignature, chunks
    })),
    ack: async (req, ack) => { acks.push(ack); return stateOf(await enclave.ackReceipt(req.taskId, req.sellerIndex, ack)) }
  })
  return data.protocol
}

/** The seller's delivery of `data` to `task`: its open and its signed chunk frames, as the seller daemon makes them. */
function delivery (task: BuyerTask, data: Uint8Array): { open: Omit<DataOpen, 'type'>, frames: Uint8Array[] } {
  const ds = encryptDataset(data, { chunkSize: 4096 })
  const wrapped = wrapDataKey(task.enclavePublicKey, task.taskId, 0, { key: ds.key, commitment: ds.commitment, commitmentSalt: ds.commitmentSalt, size: ds.size })
  return {
    open: {
      tradeId: task.tradeId,
      taskId: task.taskId,
      sellerIndex: 0,
      commitment: ds.commitment,
      wrappedKey: '0x' + Buffer.from(wrapped).toString('hex'),
      sellerSignature: signDataKeyDelivery(seller.signingKey, domain, task.taskId, 0, ds.commitment, wrapped),
      size: ds.size,
      chunks: ds.chunks.length
    },
    frames: ds.chunks.map(c => signChunk(seller.signingKey, domain, task.taskId, 0, wrapped, c))
  }
}

test('a seller silent after data-done holds the node\'s stream only for the ack\'s bound; the delivery stays unacknowledged until a later stream acks it', async () => {
  enclave = await startEnclave()
  const [node, attacker] = [await host(), await host()]
  const acks: string[] = []
  const protocol = await serveData(node, acks)
  await attacker.connect(node.addresses()[0])
  const task = await buyerSetup(enclave, artifactCode('StatsFast'))
  const { open, frames } = delivery(task, sampleDataset(300))
  assert.ok(frames.length > 1, 'several chunks')

  // The attacker: everything a seller sends up to data-done, then the receipt is read and nothing more is sent.
  const channel = messageChannel(await attacker.dialProtocol(node.peerId, protocol), { maxMessageBytes: dataConstants.MAX_MESSAGE_BYTES, messageTimeoutMs: WAIT_MS })
  await channel.write({ type: 'data-open', ...open })
  assert.equal(await channel.read(DataStatus), { type: 'data-status', nextChunk: 0, complete: false })
  for (const f of frames) await channel.writeBytes(f)
  await channel.write({ type: 'data-done' })
  const status = await channel.read(DataStatus)
  assert.ok(status.complete && status.receipt !== undefined && status.acked === false, 'the node sent the receipt and waits for the ack')

  // Silent now. The node must end the stream (reset: the ack's bound passed) before our WAIT_MS read gives up.
  let ended: Error | undefined
  try {
    const next = await channel.readBytesOrEnd()
    assert.unreachable(`the node sent ${next === undefined ? 'its clean end' : 'another frame'} instead of resetting`)
  } catch (err) {
    ended = err as Error
  }
  assert.not.equal(ended?.name, 'StreamTimeoutError', `the node still held the stream after ${WAIT_MS} ms (its delivery limit is ${DELIVERY_MS} ms, the ack's ${ACK_MS} ms)`)
  assert.is(ended?.name, 'StreamResetError', `the node reset the stream: ${ended?.message}`)
  // Nothing of the stream is left on the node's side.
  await waitFor('the node to drop the silent seller\'s data stream', () =>
    node.node.getConnections(attacker.node.peerId).every(c => c.streams.every(s => s.protocol !== protocol)), 10_000)

  // The no-ack outcome: the data is in, the receipt unacknowledged, and the enclave runs nothing.
  assert.equal(acks, [], 'no ack was taken')
  const held = (await enclave.tasks()).find(t => t.taskId === task.taskId)?.sellers[0]
  assert.ok(held?.complete === true && held.acked === false, 'complete, not acknowledged')
  await rejectsWith(enclave.execute(task.taskId), 'TaskStateError')

  // The seller comes back on a new stream: no chunk is sent again, the receipt comes back, the ack goes on it.
  let asked = 0
  const again = await dataProtocol(attacker).deliver(node.peerId, open, (i) => { asked++; return frames[i] }, {
    acknowledge: async (st) => {
      assert.is(st.receipt, status.receipt, 'the receipt of the first stream')
      return signReceiptAck(seller.signingKey, domain, { tradeId: task.tradeId, taskId: task.taskId, sellerIndex: 0, commitment: open.commitment, seller: seller.address })
    }
  })
  assert.is(asked, 0, 'the enclave kept the whole delivery')
  assert.ok(again.complete && again.acked === true, 'acknowledged on the later stream')
  assert.is(acks.length, 1)
  assert.is((await enclave.execute(task.taskId)).resultInfo.status, ResultStatus.Ok)
})

test.run()
