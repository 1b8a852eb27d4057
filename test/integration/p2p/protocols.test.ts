// The four trade protocols (/sdte/offer/1, /sdte/attest/1, /sdte/data/2, /sdte/result/1) between
// real hosts in one process on loopback TCP. The server side runs stub handlers that record what
// they got. Besides the happy paths and refusals, this checks the property "a malformed or
// oversized message on each protocol resets that stream and nothing else": a raw client sends bad
// frames, the server resets that stream without calling its handler, and the next request over
// the same connection still succeeds. A third host plays a misbehaving server for the clients.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Wallet, hexlify, keccak256, randomBytes } from 'ethers'
import { createP2PHost, messageChannel, encodeFrame, encodeJsonMessage, encodeVarint, ProtocolViolationError } from '../../../p2p/index.ts'
import { offerProtocol, offerConstants, type Offer } from '../../../p2p/offer/index.ts'
import { attestProtocol, attestConstants, type Attest, type Code, type QuoteReply } from '../../../p2p/attest/index.ts'
import { dataProtocol, dataConstants, type DataOpen, type DeliveryProgress } from '../../../p2p/data/index.ts'
import { resultProtocol, resultConstants, signResultMessage, type ResultAck, type ResultRequest } from '../../../p2p/result/index.ts'
import { RefuseRequest, RequestRefusedError } from '../../../p2p/index.ts'
import { signDemand, type Demand } from '../../../p2p/index.ts'
import type { P2PHost } from '../../../p2p/index.ts'
import type { Stream } from '@libp2p/interface'

const hex = (bytes: number): string => hexlify(randomBytes(bytes)).toLowerCase()
/** Byte-wise equality (received chunks may be Buffers, which uvu's deep equal tells apart from Uint8Arrays). */
const bytes = (list: Uint8Array[]): number[][] => list.map(b => Array.from(b))
const enc = (text: string): Uint8Array => new TextEncoder().encode(text)

// ---- the hosts: `client` dials, `server` runs every protocol with recording stub handlers ----

let client: P2PHost
let server: P2PHost
/** Plays a misbehaving peer with scripted raw handlers instead of the protocol implementations. */
let rogue: P2PHost
const hosts: P2PHost[] = []

/** What the server-side handlers got, and how they behave next (tests set `refuse`/`resumeAt`). */
const seen = {
  offers: [] as Array<{ from: string, offer: Offer }>,
  solicits: [] as Array<{ from: string, demand: Demand }>,
  attests: [] as Array<{ from: string, req: Attest }>,
  codes: [] as Array<{ from: string, req: Code }>,
  opens: [] as Array<{ from: string, req: DataOpen }>,
  receives: [] as Array<{ tradeId: string, from: number, chunks: Uint8Array[], error?: Error }>,
  results: [] as Array<{ from: string, req: ResultRequest }>,
  acks: [] as Array<{ from: string, req: ResultAck }>,
  dataAcks: [] as Array<{ tradeId: string, ack: string }>
}
const behaviour = {
  /** When set, every handler throws RefuseRequest('NotReady', ...). */
  refuse: false,
  /** data: where the handler's open says to resume, and whether it already has everything. */
  resumeAt: 0,
  alreadyComplete: false,
  /** data: receive refuses after taking this many chunks. */
  refuseAfterChunks: -1,
  /** data: the receipt a complete delivery returns (none when undefined); refuseAck: the ack handler refuses. */
  receipt: undefined as string | undefined,
  refuseAck: false,
  /** result: the bytes the handler returns. */
  result: new Uint8Array(0) as Uint8Array
}
function refuseIfAsked (): void {
  if (behaviour.refuse) throw new RefuseRequest('NotReady', 'the stub handler is not ready')
}
function calls (): number {
  return Object.values(seen).reduce((n, list) => n + list.length, 0)
}

const solicitedOffer = (demandId: string): Offer => ({ type: 'offer', demandId, kind: 'node', account: hex(20), measurement: hex(32), signature: hex(65) })
const quoteFor = (req: Attest): QuoteReply => ({
  type: 'quote',
  quote: { measurement: hex(32), enclaveAddress: hex(20), taskId: keccak256(req.tradeId), nonce: req.nonce, signature: hex(65) },
  enclavePublicKey: '0x02' + hex(32).slice(2)
})

let offers: ReturnType<typeof offerProtocol>
let attests: ReturnType<typeof attestProtocol>
let datas: ReturnType<typeof dataProtocol>
let results: ReturnType<typeof resultProtocol>

test.before(async () => {
  for (let i = 0; i < 3; i++) {
    const h = await createP2PHost({}, { privateKey: await generateKeyPair('Ed25519') })
    hosts.push(h)
    await h.start()
  }
  [client, server, rogue] = hosts
  await client.connect(server.addresses()[0])
  await client.connect(rogue.addresses()[0])

  offers = offerProtocol(client)
  attests = attestProtocol(client)
  datas = dataProtocol(client)
  results = resultProtocol(client)

  await offerProtocol(server).start({
    async onOffer (from, offer) { seen.offers.push({ from, offer }); refuseIfAsked(); return offer.kind === 'seller' },
    async onSolicit (from, demand) { seen.solicits.push({ from, demand }); refuseIfAsked(); return solicitedOffer(demand.demandId) }
  })
  await attestProtocol(server).start({
    async onAttest (from, req) { seen.attests.push({ from, req }); refuseIfAsked(); return quoteFor(req) },
    async onCode (from, req) { seen.codes.push({ from, req }); refuseIfAsked() }
  })
  await dataProtocol(server).start({
    async open (from, req) {
      seen.opens.push({ from, req })
      refuseIfAsked()
      // A richer object than the interface asks for (as an enclave's state would be): only the
      // two status fields may go on the wire, or the seller's strict schema refuses the reply.
      const state = { nextChunk: behaviour.resumeAt, complete: behaviour.alreadyComplete, sealedBytes: 0 }
      return state
    },
    async receive (req, from, chunks) {
      const record: (typeof seen.receives)[number] = { tradeId: req.tradeId, from, chunks: [] }
      seen.receives.push(record)
      try {
        for await (const chunk of chunks) {
          if (record.chunks.length === behaviour.refuseAfterChunks) throw new RefuseRequest('BadChunk', `chunk ${from + record.chunks.length} does not decrypt`)
          record.chunks.push(chunk)
        }
      } catch (err) {
        record.error = err as Error
        throw err
      }
      const complete = from + record.chunks.length === req.chunks
      return { nextChunk: from + record.chunks.length, complete, ...(complete && behaviour.receipt !== undefined && { receipt: behaviour.receipt, acked: false }) }
    },
    async ack (req, ack) {
      seen.dataAcks.push({ tradeId: req.tradeId, ack })
      if (behaviour.refuseAck) throw new RefuseRequest('ReceiptAckError', 'not signed by the seller')
      return { nextChunk: req.chunks, complete: true, receipt: behaviour.receipt, acked: true }
    }
  })
  await resultProtocol(server).start({
    async get (from, req) { seen.results.push({ from, req }); refuseIfAsked(); return behaviour.result },
    async ack (from, req) { seen.acks.push({ from, req }); refuseIfAsked() }
  })
})

test.after(async () => {
  await Promise.allSettled(hosts.map(async h => { await h.stop() }))
})

test.before.each(() => {
  for (const list of Object.values(seen)) list.length = 0
  Object.assign(behaviour, { refuse: false, resumeAt: 0, alreadyComplete: false, refuseAfterChunks: -1, receipt: undefined, refuseAck: false, result: new Uint8Array(0) })
})

// ---- fixtures ----

const buyerWallet = Wallet.createRandom()
function demand (): Demand {
  return signDemand({
    chainId: 31337,
    dtmc: hex(20),
    buyerPeer: client.peerId,
    tag: 'weather-2026',
    codeHash: hex(32),
    nodes: 2,
    sellers: 1,
    sellerPrice: 10n,
    sellerCap: 1_000_000n,
    nodePrice: 1n,
    nodeCap: 5_000_000n,
    outputPrice: 100n,
    outputCap: 4096n,
    expiresAt: 1_900_000_000,
    tradeSeconds: 3600
  }, buyerWallet)
}
const sellerOffer = (): Offer => ({ type: 'offer', demandId: hex(32), kind: 'seller', account: hex(20), offerId: 18_000_000_000_000_000_000n, signature: hex(65) })
const attestReq = (): Omit<Attest, 'type'> => ({ tradeId: hex(32), codeHash: hex(32), nonce: hex(32) })
const dataOpen = (chunks: number): Omit<DataOpen, 'type'> =>
  ({ tradeId: hex(32), taskId: hex(32), sellerIndex: 0, commitment: hex(32), wrappedKey: hex(120), sellerSignature: hex(65), size: chunks * 100, chunks })
const resultDomain = { chainId: 31337, dtmc: hex(20) }
const resultReq = (): ResultRequest => signResultMessage('result-request', { tradeId: hex(32), taskId: hex(32) }, resultDomain, buyerWallet.privateKey)
const resultAck = (): ResultAck => signResultMessage('result-ack', { tradeId: hex(32), taskId: hex(32) }, resultDomain, buyerWallet.privateKey)
/** Chunk i of a test dataset: distinct contents and lengths, so order and completeness show. */
const chunkAt = (i: number): Uint8Array => new Uint8Array(50 + (i % 7)).fill(i % 256)

// ---- raw streams ----

function serverConnections (): string[] {
  return client.node.getConnections(server.node.peerId).filter(c => c.status === 'open').map(c => c.id)
}

async function rawStream (protocol: string): Promise<Stream> {
  return await client.dialProtocol(server.peerId, protocol)
}

function frame (body: Uint8Array): Uint8Array {
  return encodeFrame(body, Number.MAX_SAFE_INTEGER).subarray()
}
const jsonFrame = (message: unknown): Uint8Array => frame(encodeJsonMessage(message))

/**
 * Reads whatever the server sends (maybe a status frame first) until the stream fails, and asserts
 * that it failed because the remote reset it, not because it ended cleanly or we gave up.
 * Returns the frames read before the reset.
 */
async function expectReset (stream: Stream, what: string): Promise<Uint8Array[]> {
  const channel = messageChannel(stream, { maxMessageBytes: 8 * 1024 * 1024, messageTimeoutMs: 10_000 })
  const frames: Uint8Array[] = []
  let err: unknown
  try {
    for (let i = 0; i < 10; i++) {
      const f = await channel.readBytesOrEnd()
      if (f === undefined) break
      frames.push(f)
    }
  } catch (e) { err = e }
  assert.ok(err instanceof Error, `${what}: the server ended the stream cleanly instead of resetting it`)
  assert.is((err as Error).name, 'StreamResetError', `${what}: ${(err as Error).name}: ${(err as Error).message}`)
  assert.is(stream.status, 'reset', what)
  return frames
}

// ---- 1. happy paths ----

test('offer: sendOffer reaches onOffer and the ack comes back; solicit returns onSolicit\'s offer', async () => {
  const offer = sellerOffer()
  assert.is(await offers.sendOffer(server.peerId, offer), true)
  assert.equal(seen.offers, [{ from: client.peerId, offer }])
  assert.is(typeof seen.offers[0].offer.offerId, 'bigint')
  // The stub only takes seller offers: the ack carries false back.
  const nodeOffer: Offer = { type: 'offer', demandId: hex(32), kind: 'node', account: hex(20), measurement: hex(32), signature: hex(65) }
  assert.is(await offers.sendOffer(server.peerId, nodeOffer), false)
  assert.equal(seen.offers[1].offer, nodeOffer)

  const d = demand()
  const answer = await offers.solicit(server.peerId, d)
  assert.equal(seen.solicits, [{ from: client.peerId, demand: d }])
  assert.is(answer.demandId, d.demandId)
  assert.is(answer.kind, 'node')
  assert.is(answer.offerId, undefined)
  assert.match(answer.measurement ?? '', /^0x[0-9a-f]{64}$/)
})

test('offer: a peer without onOffer/onSolicit refuses with a reason', async () => {
  const bare = offerProtocol(client)
  await bare.start({})
  try {
    const peerSide = offerProtocol(server)
    try { await peerSide.sendOffer(client.peerId, sellerOffer()); assert.unreachable() } catch (e) {
      assert.instance(e, RequestRefusedError)
      assert.is((e as RequestRefusedError).reason, 'NotBuyer')
    }
    try { await peerSide.solicit(client.peerId, demand()); assert.unreachable() } catch (e) {
      assert.instance(e, RequestRefusedError)
      assert.is((e as RequestRefusedError).reason, 'NoOffer')
    }
  } finally {
    await bare.stop()
  }
})

test('attest: attest returns the handler\'s quote; sendCode is acknowledged', async () => {
  const req = attestReq()
  const reply = await attests.attest(server.peerId, req)
  assert.equal(seen.attests, [{ from: client.peerId, req: { type: 'attest', ...req } }])
  assert.is(reply.type, 'quote')
  assert.is(reply.quote.nonce, req.nonce)
  assert.is(reply.quote.taskId, keccak256(req.tradeId))

  // A large envelope (256 KiB of hex-encoded JSON) travels in one frame under the protocol's cap.
  const envelope = hexlify(randomBytes(attestConstants.MAX_CODE_ENVELOPE_BYTES)).toLowerCase()
  const taskId = hex(32)
  assert.is(await attests.sendCode(server.peerId, { taskId, envelope, salt: hex(32), signature: hex(65) }), undefined)
  assert.is(seen.codes.length, 1)
  assert.is(seen.codes[0].req.taskId, taskId)
  assert.is(seen.codes[0].req.envelope, envelope)
})

test('data: a resumed delivery sends only chunks k..N-1, in order, with progress and the final status', async () => {
  const N = 130
  const k = 3
  behaviour.resumeAt = k
  const progress: DeliveryProgress[] = []
  const asked: number[] = []
  const open = dataOpen(N)
  const status = await datas.deliver(server.peerId, open, async (i) => { asked.push(i); return chunkAt(i) }, {
    onProgress: (p) => { progress.push(p) }
  })
  assert.equal(status, { type: 'data-status', nextChunk: N, complete: true })
  assert.equal(seen.opens, [{ from: client.peerId, req: { type: 'data-open', ...open } }])
  assert.is(seen.receives.length, 1)
  const [r] = seen.receives
  assert.is(r.from, k)
  assert.is(r.error, undefined)
  assert.is(r.chunks.length, N - k)
  assert.equal(bytes(r.chunks), bytes(Array.from({ length: N - k }, (_, j) => chunkAt(k + j))), 'chunks k..N-1 in order')
  assert.equal(asked, Array.from({ length: N - k }, (_, j) => k + j), 'chunkAt is asked only for k..N-1')
  // Progress every PROGRESS_EVERY_CHUNKS chunks and at the end, with absolute chunk counts.
  const every = dataConstants.PROGRESS_EVERY_CHUNKS
  assert.ok(every > k && every < N, 'the case spans several progress reports')
  const expected = [...Array.from({ length: Math.floor(N / every) }, (_, j) => (j + 1) * every), ...(N % every === 0 ? [] : [N])]
  assert.equal(progress.map(p => p.sentChunks), expected)
  assert.ok(progress.every(p => p.totalChunks === N))
  const bytesUpTo = (n: number): number => Array.from({ length: n - k }, (_, j) => chunkAt(k + j).length).reduce((a, b) => a + b, 0)
  assert.equal(progress.map(p => p.sentBytes), expected.map(bytesUpTo))
})

test('data: a fresh delivery of big chunks, and one the node already holds (no chunk sent)', async () => {
  const N = 3
  const big = (i: number): Uint8Array => new Uint8Array(1024 * 1024 + 7).fill(i + 1)
  const status = await datas.deliver(server.peerId, dataOpen(N), big)
  assert.equal(status, { type: 'data-status', nextChunk: N, complete: true })
  assert.is(seen.receives[0].from, 0)
  assert.equal(seen.receives[0].chunks.map(c => [c.length, c[0], c[c.length - 1]]), [0, 1, 2].map(i => [1024 * 1024 + 7, i + 1, i + 1]))

  behaviour.resumeAt = N
  behaviour.alreadyComplete = true
  let asked = 0
  const done = await datas.deliver(server.peerId, dataOpen(N), (i) => { asked++; return chunkAt(i) })
  assert.equal(done, { type: 'data-status', nextChunk: N, complete: true })
  assert.is(asked, 0)
  assert.is(seen.receives.length, 1, 'receive not called for a complete dataset')
})

test('data: the receipt comes back and its ack goes on the same stream (one open); declined or refused acks', async () => {
  const N = 2
  behaviour.receipt = hex(65)
  const ack = hex(65)
  const given: Array<{ receipt?: string, acked?: boolean }> = []
  const open = dataOpen(N)
  const status = await datas.deliver(server.peerId, open, chunkAt, {
    acknowledge: async (st) => { given.push({ receipt: st.receipt, acked: st.acked }); return ack }
  })
  assert.equal(given, [{ receipt: behaviour.receipt, acked: false }], 'the seller saw the receipt before acknowledging')
  assert.equal(status, { type: 'data-status', nextChunk: N, complete: true, receipt: behaviour.receipt, acked: true })
  assert.equal(seen.dataAcks, [{ tradeId: open.tradeId, ack }])
  assert.is(seen.opens.length, 1, 'one stream: no second exchange for the ack')
  // A seller that does not acknowledge (acknowledge returns nothing): the status as it was, no ack taken.
  const declined = await datas.deliver(server.peerId, dataOpen(N), chunkAt, { acknowledge: async () => undefined })
  assert.equal(declined, { type: 'data-status', nextChunk: N, complete: true, receipt: behaviour.receipt, acked: false })
  assert.is(seen.dataAcks.length, 1)
  // The node refuses the ack (the enclave found it not signed by the seller): the seller gets the reason.
  behaviour.refuseAck = true
  await expectRefused('ack', async () => await datas.deliver(server.peerId, dataOpen(N), chunkAt, { acknowledge: async () => ack }), 'ReceiptAckError')
  assert.is(seen.dataAcks.length, 2)
  // The protocol's streams are all closed: a plain delivery still goes through.
  behaviour.receipt = undefined
  assert.equal(await datas.deliver(server.peerId, dataOpen(N), chunkAt), { type: 'data-status', nextChunk: N, complete: true })
})

test('data: the ack\'s bound (ackTimeoutMs) must be a positive integer', () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => dataProtocol(client, { ackTimeoutMs: bad }), (e: Error) => e.name === 'P2POptionsError', String(bad))
  }
})

test('data: the format with data-done and data-ack is /sdte/data/2; a peer dialling /sdte/data/1 fails at negotiation, named', async () => {
  assert.is(datas.protocol, '/sdte/data/2')
  try { await client.dialProtocol(server.peerId, '/sdte/data/1'); assert.unreachable('/sdte/data/1 is not served') } catch (e) {
    assert.is((e as Error).name, 'DialFailedError')
    assert.match((e as Error).message, '/sdte/data/1')
  }
  // Only that stream failed: the connection and the current protocol are still there.
  assert.equal(await datas.deliver(server.peerId, dataOpen(1), chunkAt), { type: 'data-status', nextChunk: 1, complete: true })
})

test('result: fetch returns exactly the handler\'s bytes (0 bytes, a few, several frames)', async () => {
  const sizes = [0, 5, resultConstants.RESULT_FRAME_BYTES, 2 * resultConstants.RESULT_FRAME_BYTES + 12_345]
  for (const size of sizes) {
    behaviour.result = Uint8Array.from(randomBytes(size))
    const req = resultReq()
    const got = await results.fetch(server.peerId, req)
    assert.is(got.length, size)
    assert.ok(Buffer.from(got).equals(Buffer.from(behaviour.result)), `${size} bytes round-trip`)
    assert.equal(seen.results.at(-1), { from: client.peerId, req })
  }
  assert.is(seen.results.length, sizes.length)
})

test('result: an ack reaches the ack handler and resolves once it returns', async () => {
  const ack = resultAck()
  await results.ack(server.peerId, ack)
  assert.equal(seen.acks, [{ from: client.peerId, req: ack }])
  assert.is(seen.results.length, 0, 'an ack is not a fetch')
})

// ---- 2. refusals ----

async function expectRefused (what: string, call: () => Promise<unknown>, reason = 'NotReady'): Promise<void> {
  try {
    await call()
    assert.unreachable(`${what} was not refused`)
  } catch (e) {
    if (!(e instanceof RequestRefusedError)) throw e
    assert.is(e.name, 'RequestRefusedError')
    assert.is(e.code, 'ERR_REQUEST_REFUSED')
    assert.is(e.reason, reason, what)
  }
}

test('refusals: a handler throwing RefuseRequest makes every client call reject with RequestRefusedError', async () => {
  behaviour.refuse = true
  await expectRefused('sendOffer', async () => await offers.sendOffer(server.peerId, sellerOffer()))
  await expectRefused('solicit', async () => await offers.solicit(server.peerId, demand()))
  await expectRefused('attest', async () => await attests.attest(server.peerId, attestReq()))
  await expectRefused('sendCode', async () => await attests.sendCode(server.peerId, { taskId: hex(32), envelope: hex(64), salt: hex(32), signature: hex(65) }))
  await expectRefused('deliver', async () => await datas.deliver(server.peerId, dataOpen(4), chunkAt))
  await expectRefused('fetch', async () => await results.fetch(server.peerId, resultReq()))
  await expectRefused('ack', async () => { await results.ack(server.peerId, resultAck()) })
  // Each handler was reached once (a refusal is an answer, not a reset).
  assert.equal([seen.offers.length, seen.solicits.length, seen.attests.length, seen.codes.length, seen.opens.length, seen.results.length, seen.acks.length], [1, 1, 1, 1, 1, 1, 1])
  assert.is(seen.receives.length, 0)
})

test('refusals: a reason that is not a valid code still arrives as a refusal', async () => {
  const bare = attestProtocol(client)
  await bare.start({
    onAttest: async () => { throw new RefuseRequest('enclave-busy!', 'x'.repeat(2000)) },
    onCode: async () => { throw new RefuseRequest('9' + 'Z'.repeat(100), 'no') }
  })
  try {
    const peerSide = attestProtocol(server)
    try { await peerSide.attest(client.peerId, attestReq()); assert.unreachable() } catch (e) {
      assert.instance(e, RequestRefusedError)
      assert.is((e as RequestRefusedError).reason, 'enclave_busy_')
      assert.ok((e as RequestRefusedError).message.length < 600)
    }
    try { await peerSide.sendCode(client.peerId, { taskId: hex(32), envelope: '0x', salt: hex(32), signature: hex(65) }); assert.unreachable() } catch (e) {
      assert.instance(e, RequestRefusedError)
      assert.is((e as RequestRefusedError).reason, 'R9' + 'Z'.repeat(62))
    }
  } finally {
    await bare.stop()
  }
})

test('a handler that fails (not a refusal) or overruns its deadline resets the stream; the client gets no answer', async () => {
  const failing = attestProtocol(rogue)
  await failing.start({
    onAttest: async () => { throw new Error('enclave crashed') },
    onCode: async () => {}
  })
  const stalling = offerProtocol(rogue, { exchangeTimeoutMs: 300 })
  await stalling.start({ onOffer: async () => await new Promise<boolean>(() => {}) })
  try {
    try { await attests.attest(rogue.peerId, attestReq()); assert.unreachable() } catch (e) {
      assert.is((e as Error).name, 'StreamResetError')
    }
    try { await offers.sendOffer(rogue.peerId, sellerOffer()); assert.unreachable() } catch (e) {
      assert.is((e as Error).name, 'StreamResetError')
    }
    assert.is(client.node.getConnections(rogue.node.peerId).filter(c => c.status === 'open').length, 1)
  } finally {
    await failing.stop()
    await stalling.stop()
  }
})

test('refusals: a delivery refused mid-stream reports the reason to the seller', async () => {
  behaviour.refuseAfterChunks = 2
  await expectRefused('deliver', async () => await datas.deliver(server.peerId, dataOpen(6), chunkAt), 'BadChunk')
  assert.is(seen.receives[0].chunks.length, 2)
  assert.is(seen.receives[0].error?.name, 'RefuseRequest')
})

test('refusals: a big delivery refused after two chunks still gets the reason (the node drains the rest)', async () => {
  behaviour.refuseAfterChunks = 2
  // 24 MiB: far more than the node buffers (2 × 4 MiB) and the muxer window. Were the node to stop
  // reading after refusing, the seller would block on backpressure until its message timeout.
  const seller = dataProtocol(client, { messageTimeoutMs: 5_000 })
  const big = (): Uint8Array => new Uint8Array(1024 * 1024)
  await expectRefused('deliver', async () => await seller.deliver(server.peerId, dataOpen(24), big), 'BadChunk')
  assert.is(seen.receives[0].chunks.length, 2)
})

test('refusals do not leak streams: more refused requests than the per-connection stream limit', async () => {
  behaviour.refuse = true
  // MAX_OUTBOUND_STREAMS / MAX_INBOUND_STREAMS are 16 for /sdte/data/2: a refused stream left
  // half-open would count against them until the limit refuses new streams.
  const rounds = dataConstants.MAX_OUTBOUND_STREAMS + 4
  for (let i = 0; i < rounds; i++) {
    await expectRefused(`deliver #${i}`, async () => await datas.deliver(server.peerId, dataOpen(2), chunkAt))
    await expectRefused(`fetch #${i}`, async () => await results.fetch(server.peerId, resultReq()))
  }
  behaviour.refuse = false
  assert.equal(await datas.deliver(server.peerId, dataOpen(2), chunkAt), { type: 'data-status', nextChunk: 2, complete: true })
})

// ---- 3. malformed or oversized messages reset that stream and nothing else ----

interface ProtocolCase {
  name: string
  protocol: () => string
  maxMessageBytes: number
  /** A message the server accepts as its first frame. */
  valid: () => Record<string, unknown>
  /** Schema-invalid variants of it: an unknown field, a wrong type. */
  invalid: () => Array<Record<string, unknown>>
  /** A normal request through the protocol client; it asserts its own answer. */
  normalRequest: () => Promise<void>
}

const cases: ProtocolCase[] = [
  {
    name: 'offer',
    protocol: () => offers.protocol,
    maxMessageBytes: offerConstants.MAX_MESSAGE_BYTES,
    valid: () => ({ ...sellerOffer(), offerId: '7' }),
    invalid: () => [
      { ...sellerOffer(), offerId: '7', extra: true },
      { ...sellerOffer(), offerId: 7 },
      { type: 'solicit', demand: { ...demand(), nodes: '2' } },
      { type: 'trade-notice', demandId: hex(32) }
    ],
    normalRequest: async () => { assert.is(await offers.sendOffer(server.peerId, sellerOffer()), true) }
  },
  {
    name: 'attest',
    protocol: () => attests.protocol,
    maxMessageBytes: attestConstants.MAX_MESSAGE_BYTES,
    valid: () => ({ type: 'attest', ...attestReq() }),
    invalid: () => [
      { type: 'attest', ...attestReq(), extra: 1 },
      { type: 'attest', ...attestReq(), nonce: 5 },
      { type: 'code', taskId: hex(32), envelope: 'not hex', salt: hex(32), signature: hex(65) }
    ],
    normalRequest: async () => { assert.is((await attests.attest(server.peerId, attestReq())).type, 'quote') }
  },
  {
    name: 'data',
    protocol: () => datas.protocol,
    maxMessageBytes: dataConstants.MAX_CHUNK_FRAME_BYTES,
    valid: () => ({ type: 'data-open', ...dataOpen(2) }),
    invalid: () => [
      { type: 'data-open', ...dataOpen(2), extra: 'x' },
      { type: 'data-open', ...dataOpen(2), chunks: '2' },
      { type: 'data-open', ...dataOpen(2), chunks: 0 },
      { type: 'data-open', ...dataOpen(2), chunks: dataConstants.MAX_CHUNKS + 1 }
    ],
    normalRequest: async () => {
      assert.equal(await datas.deliver(server.peerId, dataOpen(2), chunkAt), { type: 'data-status', nextChunk: 2, complete: true })
    }
  },
  {
    name: 'result',
    protocol: () => results.protocol,
    maxMessageBytes: resultConstants.RESULT_FRAME_BYTES,
    valid: () => resultReq(),
    invalid: () => [
      { ...resultReq(), extra: null },
      { ...resultReq(), taskId: 42 },
      { ...resultReq(), timestamp: -1 },
      { ...resultAck(), signature: undefined },
      { type: 'result', size: 3 }
    ],
    normalRequest: async () => {
      behaviour.result = Uint8Array.of(1, 2, 3)
      assert.equal(await results.fetch(server.peerId, resultReq()), Uint8Array.of(1, 2, 3))
    }
  }
]

for (const c of cases) {
  test(`${c.name}: malformed, schema-invalid and oversized frames reset only their stream`, async () => {
    const connections = serverConnections()
    assert.is(connections.length, 1)
    const badFrames: Array<[string, Uint8Array[]]> = [
      ['not JSON', [frame(enc('{"type":'))]],
      ['not UTF-8', [frame(Uint8Array.of(0x22, 0xff, 0xfe, 0x22))]],
      ['a JSON array', [jsonFrame([c.valid()])]],
      ...c.invalid().map((m, i): [string, Uint8Array[]] => [`schema-invalid #${i}`, [jsonFrame(m)]]),
      // Only the prefix is sent: the server must refuse from the declared length alone.
      [`length prefix ${c.maxMessageBytes + 1} > max`, [encodeVarint(c.maxMessageBytes + 1)]],
      ['an overlong length prefix', [new Uint8Array(9).fill(0x80)]],
      ['a frame cut off by the end of the stream', [frame(encodeJsonMessage(c.valid())).subarray(0, 20)]]
    ]
    // One request per stream: a valid request followed by anything is refused before the handler
    // acts on it. (On /sdte/data/2 the frames after the open are chunks: tested below.)
    if (c.name !== 'data') {
      badFrames.push(
        ['a second request after a valid one', [jsonFrame(c.valid()), jsonFrame(c.valid())]],
        ['raw bytes after a valid request', [jsonFrame(c.valid()), frame(new Uint8Array(3))]]
      )
    }
    // A good exchange running on its own stream while the bad ones are reset beside it.
    const beside = await rawStream(c.protocol())
    for (const [what, bytes] of badFrames) {
      const stream = await rawStream(c.protocol())
      for (const b of bytes) stream.send(b)
      if (what.includes('cut off') || what.includes('after a valid')) await stream.close()
      await expectReset(stream, `${c.name}, ${what}`)
      assert.is(calls(), 0, `${c.name}, ${what}: the handler was not called`)
      // Nothing else was touched: same single connection, and a normal request still works.
      assert.equal(serverConnections(), connections, `${c.name}, ${what}: connection kept`)
      await c.normalRequest()
      assert.ok(calls() > 0, `${c.name}: the normal request reached the handler`)
      for (const list of Object.values(seen)) list.length = 0
    }
    // The stream opened before all that still works: send a valid first message on it.
    const ch = messageChannel(beside, { maxMessageBytes: c.maxMessageBytes })
    await ch.write(c.valid())
    if (c.name !== 'data') await ch.close()
    const reply = await ch.read((v: unknown) => v as { type: string })
    assert.ok(['offer-ack', 'quote', 'data-status', 'result'].includes(reply.type), reply.type)
    ch.abort(new Error('done with it'))
    assert.equal(serverConnections(), connections)
  })
}

test('data: chunk frames that break the announced delivery reset it, and the handler sees why', async () => {
  const connections = serverConnections()

  /** Opens a delivery of `chunks` announced chunks by hand; returns the stream after the node's first status. */
  async function openRaw (chunks: number): Promise<{ stream: Stream, write: (b: Uint8Array) => void }> {
    const stream = await rawStream(datas.protocol)
    stream.send(jsonFrame({ type: 'data-open', ...dataOpen(chunks) }))
    const ch = messageChannel(stream, { maxMessageBytes: dataConstants.MAX_CHUNK_FRAME_BYTES })
    const status = await ch.read((v: unknown) => v as { type: string, nextChunk: number })
    assert.equal(status, { type: 'data-status', nextChunk: 0, complete: false })
    return { stream, write: (b) => { stream.send(b) } }
  }

  // More chunk frames than announced: the receive iterator must not end quietly as "complete".
  {
    const { stream, write } = await openRaw(2)
    for (let i = 0; i < 3; i++) write(frame(chunkAt(i)))
    await stream.close()
    await expectReset(stream, 'more chunks than announced')
    assert.is(seen.receives.length, 1)
    assert.instance(seen.receives[0].error, ProtocolViolationError, 'receive saw the extra chunk')
  }
  // Fewer: the seller ends its side after one of three chunks.
  {
    seen.receives.length = 0
    const { stream, write } = await openRaw(3)
    write(frame(chunkAt(0)))
    await stream.close()
    await expectReset(stream, 'fewer chunks than announced')
    assert.equal(bytes(seen.receives[0].chunks), bytes([chunkAt(0)]))
    assert.instance(seen.receives[0].error, ProtocolViolationError, 'receive saw the early end')
  }
  // An oversized chunk frame: refused from its prefix, before the body.
  {
    seen.receives.length = 0
    const { stream, write } = await openRaw(3)
    write(frame(chunkAt(0)))
    write(encodeVarint(dataConstants.MAX_CHUNK_FRAME_BYTES + 1))
    await expectReset(stream, 'oversized chunk frame')
    assert.equal(bytes(seen.receives[0].chunks), bytes([chunkAt(0)]))
    assert.is(seen.receives[0].error?.name, 'FrameTooLargeError')
  }
  // A chunk frame cut off by the end of the stream.
  {
    seen.receives.length = 0
    const { stream, write } = await openRaw(2)
    write(frame(new Uint8Array(100)).subarray(0, 40))
    await stream.close()
    await expectReset(stream, 'truncated chunk frame')
    assert.is(seen.receives[0].error?.name, 'TruncatedFrameError')
  }
  // Chunks are opaque to the protocol: a second data-open in place of a chunk is one more chunk of
  // bytes (the enclave rejects what does not decrypt). Nothing else was disturbed.
  {
    seen.receives.length = 0
    const { stream, write } = await openRaw(1)
    const impostor = encodeJsonMessage({ type: 'data-open', ...dataOpen(1) })
    write(frame(impostor))
    write(jsonFrame({ type: 'data-done' }))
    await stream.close()
    const ch = messageChannel(stream)
    assert.equal(await ch.read((v: unknown) => v), { type: 'data-status', nextChunk: 1, complete: true })
    assert.equal(bytes(seen.receives[0].chunks), bytes([impostor]))
  }
  assert.equal(serverConnections(), connections)
  assert.equal(await datas.deliver(server.peerId, dataOpen(3), chunkAt), { type: 'data-status', nextChunk: 3, complete: true })
})

test('bad streams on every protocol beside a delivery in flight leave the delivery alone', async () => {
  let openGate = (): void => {}
  const gate = new Promise<void>(resolve => { openGate = resolve })
  let reachedGate = (): void => {}
  const atGate = new Promise<void>(resolve => { reachedGate = resolve })
  const N = 6
  const big = (i: number): Uint8Array => new Uint8Array(512 * 1024).fill(i + 10)
  const delivery = datas.deliver(server.peerId, dataOpen(N), async (i) => {
    if (i === 3) { reachedGate(); await gate }
    return big(i)
  })
  await atGate
  for (const c of cases) {
    const stream = await rawStream(c.protocol())
    stream.send(frame(enc('not json')))
    await expectReset(stream, `${c.name} beside a delivery`)
  }
  openGate()
  assert.equal(await delivery, { type: 'data-status', nextChunk: N, complete: true })
  assert.equal(seen.receives[0].chunks.map(c => [c.length, c[0]]), Array.from({ length: N }, (_, i) => [512 * 1024, i + 10]))
  assert.is(seen.receives[0].error, undefined)
})

test('result client: a misbehaving node gets a typed error and no stream is left open', async () => {
  let script: Uint8Array[] = []
  await rogue.handle(results.protocol, async (stream) => {
    const ch = messageChannel(stream)
    await ch.read((v: unknown) => v)
    for (const f of script) stream.send(f)
    await ch.close()
  })
  const header = (size: number): Uint8Array => jsonFrame({ type: 'result', size })
  const scripts: Array<[string, Uint8Array[], string]> = [
    ['more bytes than the header says', [header(3), frame(new Uint8Array(5))], 'ProtocolViolationError'],
    ['an empty frame', [header(3), frame(new Uint8Array(0))], 'ProtocolViolationError'],
    ['a frame after the announced size', [header(3), frame(new Uint8Array(3)), frame(new Uint8Array(1))], 'ProtocolViolationError'],
    ['an end before the announced size', [header(10), frame(new Uint8Array(3))], 'StreamEndedError'],
    ['a size over the limit', [header(resultConstants.MAX_RESULT_ENVELOPE_BYTES + 1)], 'MessageSchemaError'],
    ['a reply of another protocol', [jsonFrame({ type: 'offer-ack', accepted: true })], 'MessageSchemaError'],
    ['a frame over the result frame size', [header(3), encodeVarint(resultConstants.RESULT_FRAME_BYTES + 1)], 'FrameTooLargeError']
  ]
  const openResultStreams = (): number => client.node.getConnections(rogue.node.peerId)
    .flatMap(conn => conn.streams).filter(st => st.protocol === results.protocol && st.status === 'open').length
  for (const [what, frames, expected] of scripts) {
    script = frames
    try {
      await results.fetch(rogue.peerId, resultReq())
      assert.unreachable(what)
    } catch (e) {
      assert.is((e as Error).name, expected, `${what}: ${(e as Error).message}`)
    }
    assert.is(openResultStreams(), 0, `${what}: the client's stream is closed`)
  }
  script = [header(3), frame(Uint8Array.of(7, 8)), frame(Uint8Array.of(9))]
  assert.equal(await results.fetch(rogue.peerId, resultReq()), Uint8Array.of(7, 8, 9))
})

test('offer client: a solicited offer for another demand is a protocol violation', async () => {
  let reply: Offer = sellerOffer()
  await rogue.handle(offers.protocol, async (stream) => {
    const ch = messageChannel(stream)
    await ch.read((v: unknown) => v)
    await ch.write(reply)
    await ch.close()
  })
  const d = demand()
  try { await offers.solicit(rogue.peerId, d); assert.unreachable() } catch (e) { assert.instance(e, ProtocolViolationError) }
  reply = { ...sellerOffer(), demandId: d.demandId.toUpperCase().replace('0X', '0x') }
  assert.is((await offers.solicit(rogue.peerId, d)).demandId, d.demandId)
})

test('the hosts survived all of it', async () => {
  assert.is(client.status, 'started')
  assert.is(server.status, 'started')
  assert.is(serverConnections().length, 1)
  assert.is(await offers.sendOffer(server.peerId, sellerOffer()), true)
})

test.run()
