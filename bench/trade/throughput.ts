// /sdte/data/2 against a plain TCP socket on loopback, in this process: the same bytes in the same
// chunk size, once as plaintext chunks and once encrypted chunk by chunk with encryptChunk (what the
// seller does), plus encryptChunk alone, so the table shows where a delivery's time goes.
// The libp2p side is two real hosts (TCP + noise + yamux) with the real data protocol; the
// receiving handler only counts bytes (no enclave). Beside it, the same two hosts with a bare libp2p
// stream (a handler that only drains, no framing, no protocol): what /sdte/data/2 adds on top of libp2p.
import { once } from 'node:events'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { hexlify } from 'ethers'
import { createP2PHost, type P2PHost } from '../../p2p/index.ts'
import { dataProtocol } from '../../p2p/data/index.ts'
import { encryptChunk, datasetCommitment } from '../../enclave/crypto.ts'

export interface ThroughputOptions {
  /** Bytes sent in each run. Default 256 MiB. */
  totalBytes?: number
  /** Plaintext chunk size. Default 64 KiB (the seller's DEFAULT_CHUNK_SIZE). */
  chunkBytes?: number
  /** Runs of each path; the fastest is reported (other work on the machine only ever slows a run down). Default 5. */
  repeats?: number
}

export interface ThroughputRow {
  path: string
  bytes: number
  seconds: number
  /** MiB per second of plaintext payload. */
  mibPerSecond: number
}

export const DEFAULT_THROUGHPUT_BYTES = 256 * 1024 * 1024
export const DEFAULT_THROUGHPUT_CHUNK = 64 * 1024
export const DEFAULT_THROUGHPUT_REPEATS = 5

type ChunkSource = (index: number, last: boolean) => Uint8Array

function row (path: string, bytes: number, ms: number): ThroughputRow {
  return { path, bytes, seconds: ms / 1000, mibPerSecond: bytes / 1024 / 1024 / (ms / 1000) }
}

/** The fastest of `repeats` runs of each of `a` and `b`, run in alternation (a, b, a, b, ...), ms. */
async function bestPair (repeats: number, a: () => Promise<number>, b: () => Promise<number>): Promise<[number, number]> {
  let bestA = Infinity
  let bestB = Infinity
  for (let i = 0; i < repeats; i++) {
    bestA = Math.min(bestA, await a())
    bestB = Math.min(bestB, await b())
  }
  return [bestA, bestB]
}

/** The fastest of `repeats` runs of `fn`, ms. */
async function bestMs (repeats: number, fn: () => Promise<number> | number): Promise<number> {
  let best = Infinity
  for (let i = 0; i < repeats; i++) best = Math.min(best, await fn())
  return best
}

/** A node:net socket pair on 127.0.0.1: the client writes every chunk (honouring backpressure), timed until the server has read them all. */
async function tcpRun (chunks: number, source: ChunkSource): Promise<{ ms: number, received: number }> {
  let received = 0
  let expected = Infinity
  let done: () => void = () => {}
  const allIn = new Promise<void>(resolve => { done = resolve })
  const server = createServer((sock: Socket) => {
    sock.on('data', (b: Buffer) => { received += b.length; if (received >= expected) done() })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  await once(client, 'connect')
  client.setNoDelay(true)
  try {
    let sent = 0
    const t0 = performance.now()
    for (let i = 0; i < chunks; i++) {
      const c = source(i, i === chunks - 1)
      sent += c.length
      if (!client.write(c)) await once(client, 'drain')
    }
    expected = sent
    if (received >= expected) done()
    await allIn
    return { ms: performance.now() - t0, received }
  } finally {
    client.destroy()
    server.close()
  }
}

interface P2PPair { sender: P2PHost, receiver: P2PHost, received: { bytes: number, chunks: number }, bare: { bytes: number, expected: number, done: () => void } }

/** The bare baseline's protocol: raw bytes, no framing, the receiver drains and counts. */
const BARE_PROTOCOL = '/sdte-bench/bare/1'

async function p2pPair (): Promise<P2PPair> {
  const sender = await createP2PHost({}, { privateKey: await generateKeyPair('Ed25519') })
  const receiver = await createP2PHost({}, { privateKey: await generateKeyPair('Ed25519') })
  await sender.start()
  await receiver.start()
  const received = { bytes: 0, chunks: 0 }
  await dataProtocol(receiver).start({
    open: async () => ({ nextChunk: 0, complete: false }),
    receive: async (req, _from, chunks) => {
      // Only consume: the throughput of the protocol, not of an enclave.
      for await (const c of chunks) { received.bytes += c.length; received.chunks++ }
      return { nextChunk: req.chunks, complete: true }
    }
  })
  const bare = { bytes: 0, expected: Infinity, done: () => {} }
  await receiver.handle(BARE_PROTOCOL, async (stream) => {
    // Only drain: libp2p's own cost (noise, yamux, TCP) for the same bytes, nothing of ours.
    const ended = new Promise<void>(resolve => { stream.addEventListener('remoteCloseWrite', () => { resolve() }, { once: true }) })
    stream.addEventListener('message', (evt) => {
      bare.bytes += evt.data.byteLength
      if (bare.bytes >= bare.expected) bare.done()
    })
    await ended
  })
  await sender.connect(receiver.addresses()[0])
  return { sender, receiver, received, bare }
}

/** A bare libp2p stream between the same two hosts: the sender writes every chunk (honouring backpressure), timed until the receiver has drained them all. */
async function bareRun (pair: P2PPair, chunks: number, source: ChunkSource): Promise<{ ms: number, received: number }> {
  pair.bare.bytes = 0
  pair.bare.expected = Infinity
  const allIn = new Promise<void>(resolve => { pair.bare.done = resolve })
  const t0 = performance.now()
  const stream = await pair.sender.dialProtocol(pair.receiver.peerId, BARE_PROTOCOL)
  let sent = 0
  for (let i = 0; i < chunks; i++) {
    const c = source(i, i === chunks - 1)
    sent += c.length
    if (!stream.send(c)) await stream.onDrain()
  }
  pair.bare.expected = sent
  if (pair.bare.bytes >= sent) pair.bare.done()
  await stream.close()
  await allIn
  return { ms: performance.now() - t0, received: pair.bare.bytes }
}

async function p2pRun (pair: P2PPair, chunks: number, size: number, source: ChunkSource): Promise<{ ms: number, received: number }> {
  pair.received.bytes = 0
  pair.received.chunks = 0
  const hex32 = (): string => hexlify(randomBytes(32))
  const t0 = performance.now()
  const status = await dataProtocol(pair.sender).deliver(pair.receiver.peerId, {
    tradeId: hex32(), taskId: hex32(), sellerIndex: 0, commitment: hex32(), wrappedKey: hex32(), sellerSignature: hexlify(randomBytes(65)), size, chunks
  }, (i) => source(i, i === chunks - 1))
  const ms = performance.now() - t0
  if (!status.complete || pair.received.chunks !== chunks) throw new Error(`data protocol delivered ${pair.received.chunks} of ${chunks} chunks`)
  return { ms, received: pair.received.bytes }
}

/** Runs every path once and returns one row each (plaintext payload MiB/s). */
export async function measureThroughput (o: ThroughputOptions = {}): Promise<ThroughputRow[]> {
  const total = o.totalBytes ?? DEFAULT_THROUGHPUT_BYTES
  const chunkBytes = o.chunkBytes ?? DEFAULT_THROUGHPUT_CHUNK
  const chunks = Math.ceil(total / chunkBytes)
  // The payload: one random buffer; chunk i is a view into it (no copy), like the seller's subarray of the file.
  const plain = new Uint8Array(randomBytes(chunks * chunkBytes))
  const key = new Uint8Array(randomBytes(32))
  const commitment = datasetCommitment(plain.subarray(0, 1024), new Uint8Array(randomBytes(32)))
  const plainChunk: ChunkSource = (i) => plain.subarray(i * chunkBytes, (i + 1) * chunkBytes)
  const sealedChunk: ChunkSource = (i, last) => encryptChunk(key, commitment, i, last, plain.subarray(i * chunkBytes, (i + 1) * chunkBytes))
  const bytes = chunks * chunkBytes
  const repeats = o.repeats ?? DEFAULT_THROUGHPUT_REPEATS
  const rows: ThroughputRow[] = []

  rows.push(row('encryptChunk alone (AES-256-GCM, no I/O)', bytes, await bestMs(repeats, () => {
    const t0 = performance.now()
    let sealed = 0
    for (let i = 0; i < chunks; i++) sealed += sealedChunk(i, i === chunks - 1).length
    if (sealed <= bytes) throw new Error('encryptChunk did not add its header and tag')
    return performance.now() - t0
  })))

  // Warm both paths once on a small run (JIT, first connection's buffers), then measure the plaintext
  // and the encrypted variant of each path in alternation, so both see the same conditions.
  const sealedBytes = bytes + chunks * (sealedChunk(0, false).length - chunkBytes)
  const tcpMs = async (source: ChunkSource, expected: number): Promise<number> => {
    const r = await tcpRun(chunks, source)
    if (r.received !== expected) throw new Error(`TCP received ${r.received} of ${expected} bytes`)
    return r.ms
  }
  await tcpRun(64, plainChunk)
  const tcp = await bestPair(repeats, async () => await tcpMs(plainChunk, bytes), async () => await tcpMs(sealedChunk, sealedBytes))
  rows.push(row('TCP socket, plaintext chunks', bytes, tcp[0]))
  rows.push(row('TCP socket, encryptChunk chunks', bytes, tcp[1]))

  const pair = await p2pPair()
  try {
    await p2pRun(pair, 64, 64 * chunkBytes, plainChunk)
    await bareRun(pair, 64, plainChunk)
    const bareMs = async (source: ChunkSource, expected: number): Promise<number> => {
      const r = await bareRun(pair, chunks, source)
      if (r.received !== expected) throw new Error(`bare libp2p stream received ${r.received} of ${expected} bytes`)
      return r.ms
    }
    const bare = await bestPair(repeats, async () => await bareMs(plainChunk, bytes), async () => await bareMs(sealedChunk, sealedBytes))
    rows.push(row('bare libp2p stream, plaintext chunks', bytes, bare[0]))
    rows.push(row('bare libp2p stream, encryptChunk chunks', bytes, bare[1]))
    const p2p = await bestPair(repeats, async () => (await p2pRun(pair, chunks, bytes, plainChunk)).ms, async () => (await p2pRun(pair, chunks, bytes, sealedChunk)).ms)
    rows.push(row('/sdte/data/2, plaintext chunks', bytes, p2p[0]))
    rows.push(row('/sdte/data/2, encryptChunk chunks (as the seller)', bytes, p2p[1]))
  } finally {
    await pair.sender.stop()
    await pair.receiver.stop()
  }
  return rows
}

/** `row.mibPerSecond` over the plain TCP row and over the bare libp2p row of the same kind of chunk (plaintext or encrypted). */
export function throughputRatios (rows: ThroughputRow[], r: ThroughputRow): { vsTcp: number, vsBare?: number } {
  const tcp = rows.find(x => x.path.startsWith('TCP socket, plaintext'))
  const kind = r.path.includes('encryptChunk chunks') ? 'encryptChunk chunks' : 'plaintext chunks'
  const bare = rows.find(x => x.path.startsWith('bare libp2p stream') && x.path.endsWith(kind))
  return { vsTcp: tcp === undefined ? NaN : r.mibPerSecond / tcp.mibPerSecond, ...(r.path.startsWith('/sdte/data/2') && bare !== undefined ? { vsBare: r.mibPerSecond / bare.mibPerSecond } : {}) }
}

// On its own: node bench/trade/throughput.ts [--mib N] [--chunk-kib N] [--repeats N]; prints the table.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { mib: { type: 'string' }, 'chunk-kib': { type: 'string' }, repeats: { type: 'string' } } })
  const MiB = 1024 * 1024
  const totalBytes = values.mib === undefined ? DEFAULT_THROUGHPUT_BYTES : Number(values.mib) * MiB
  const chunkBytes = values['chunk-kib'] === undefined ? DEFAULT_THROUGHPUT_CHUNK : Number(values['chunk-kib']) * 1024
  const repeats = values.repeats === undefined ? DEFAULT_THROUGHPUT_REPEATS : Number(values.repeats)
  const rows = await measureThroughput({ totalBytes, chunkBytes, repeats })
  console.log(`${totalBytes / MiB} MiB in ${chunkBytes / 1024} KiB chunks, fastest of ${repeats}`)
  console.log('| path | s | MiB/s | vs plain TCP | vs bare libp2p stream |')
  console.log('|---|---:|---:|---:|---:|')
  for (const r of rows) {
    const q = throughputRatios(rows, r)
    console.log(`| ${r.path} | ${r.seconds.toFixed(2)} | ${r.mibPerSecond.toFixed(0)} | ${q.vsTcp.toFixed(2)}× | ${q.vsBare === undefined ? '' : `${q.vsBare.toFixed(2)}×`} |`)
  }
}
