// The message framing against an in-memory stream pair (@libp2p/utils streamPair: two real v3
// streams over a mock muxer), the remote side played by hand-written bytes.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { streamPair } from '@libp2p/utils'
import {
  messageChannel, encodeVarint, decodeVarint, encodeFrame, encodeJsonMessage, schema as s,
  FrameTooLargeError, MalformedFrameError, TruncatedFrameError, MessageSchemaError, StreamTimeoutError, StreamEndedError
} from '../../../p2p/messages/index.ts'
import type { Stream } from '@libp2p/interface'

const Ping = s.object({
  type: s.literal('ping'),
  text: s.string({ maxLength: 64 }),
  amount: s.bigintString(),
  hash: s.hex({ bytes: 4 }),
  note: s.optional(s.string({ maxLength: 8 }))
})

/** Resolves once the stream has closed, with the error it closed with (if any). */
function closed (stream: Stream): Promise<Error | undefined> {
  if (stream.status !== 'open') return Promise.resolve(undefined)
  return new Promise(resolve => {
    stream.addEventListener('close', (evt) => { resolve(evt.error) }, { once: true })
  })
}

async function expectRefusal (bytes: Uint8Array[], expected: new (...args: any[]) => Error, opts: { maxMessageBytes?: number, end?: boolean } = {}): Promise<Error> {
  const [outbound, inbound] = await streamPair()
  const remoteClosed = closed(outbound)
  const channel = messageChannel(inbound, { maxMessageBytes: opts.maxMessageBytes ?? 1024, messageTimeoutMs: 2000 })
  for (const b of bytes) outbound.send(b)
  if (opts.end === true) await outbound.close()
  let err: unknown
  try {
    await channel.read(Ping)
  } catch (e) { err = e }
  assert.instance(err, expected)
  assert.is((err as Error).name, expected.name)
  // The stream is reset: our side aborted, the remote sees an error close.
  assert.is(inbound.status, 'aborted')
  const remoteErr = await remoteClosed
  assert.ok(remoteErr !== undefined, 'remote saw a reset')
  assert.is(outbound.status, 'reset')
  // The channel stays failed with the same error.
  try { await channel.read(Ping); assert.unreachable('read after failure') } catch (e) { assert.is(e, err) }
  return err as Error
}

// AbortSignal.timeout() timers do not keep Node alive; a pending timeout test needs something that does.
const keepAlive = setInterval(() => {}, 1000)
test.after(() => { clearInterval(keepAlive) })

const valid = { type: 'ping', text: 'hello', amount: 12345678901234567890n, hash: '0xDEADbeef' }

test('a valid frame round-trips, bigints and hex normalised, then a clean end', async () => {
  const [outbound, inbound] = await streamPair()
  const a = messageChannel(outbound)
  const b = messageChannel(inbound)
  await a.write(valid)
  await a.writeBytes(Uint8Array.from([1, 2, 3]))
  await a.writeBytes(new Uint8Array(0))
  await a.close()
  const msg = await b.read(Ping)
  assert.equal(msg, { type: 'ping', text: 'hello', amount: 12345678901234567890n, hash: '0xdeadbeef' })
  assert.equal(await b.readBytes(), Uint8Array.from([1, 2, 3]))
  assert.equal(await b.readBytes(), new Uint8Array(0))
  assert.is(await b.readOrEnd(Ping), undefined)
  await b.close()
  assert.is(inbound.status === 'aborted' || inbound.status === 'reset', false)
})

test('frames split across many small chunks are reassembled', async () => {
  const [outbound, inbound] = await streamPair()
  const b = messageChannel(inbound)
  const frame = encodeFrame(encodeJsonMessage(valid)).subarray()
  for (const byte of frame) outbound.send(Uint8Array.of(byte))
  assert.is((await b.read(Ping)).text, 'hello')
})

test('an oversized frame is refused from its length prefix alone and the stream reset', async () => {
  const err = await expectRefusal([encodeVarint(1025)], FrameTooLargeError)
  assert.is((err as FrameTooLargeError).code, 'ERR_FRAME_TOO_LARGE')
  assert.is((err as FrameTooLargeError).length, 1025)
})

test('malformed JSON is refused and the stream reset', async () => {
  const body = new TextEncoder().encode('{"type":"ping",')
  const err = await expectRefusal([encodeVarint(body.length), body], MalformedFrameError)
  assert.is((err as MalformedFrameError).code, 'ERR_MALFORMED_FRAME')
})

test('invalid UTF-8 is malformed', async () => {
  const body = Uint8Array.of(0x22, 0xff, 0x22)
  await expectRefusal([encodeVarint(body.length), body], MalformedFrameError)
})

test('a non-canonical or overlong length prefix is malformed', async () => {
  await expectRefusal([Uint8Array.of(0x85, 0x00)], MalformedFrameError)
  await expectRefusal([new Uint8Array(9).fill(0x80)], MalformedFrameError, { maxMessageBytes: 1024 })
})

test('a schema-invalid message is refused with the field path, never the value', async () => {
  const cases: Array<[unknown, string]> = [
    [{ ...valid, text: 'x'.repeat(65) }, '$.text'],
    [{ ...valid, amount: '12.5' }, '$.amount'],
    [{ ...valid, amount: 12 }, '$.amount'],
    [{ ...valid, hash: '0xdead' }, '$.hash'],
    [{ ...valid, extra: 1 }, '$.extra'],
    [{ type: 'ping', text: 'a', amount: '1' }, '$.hash'],
    [{ ...valid, type: 'pong' }, '$.type'],
    [[1, 2], '$']
  ]
  for (const [message, path] of cases) {
    const body = encodeJsonMessage(message)
    const err = await expectRefusal([encodeVarint(body.length), body], MessageSchemaError) as MessageSchemaError
    assert.is(err.code, 'ERR_MESSAGE_SCHEMA')
    assert.is(err.path, path)
    assert.not.match(err.message, 'xxxxx')
  }
})

test('a stream that ends mid-frame is truncated (in the body and in the prefix)', async () => {
  const body = encodeJsonMessage(valid)
  const err = await expectRefusal([encodeVarint(body.length), body.subarray(0, 5)], TruncatedFrameError, { end: true })
  assert.is((err as TruncatedFrameError).code, 'ERR_TRUNCATED_FRAME')
  await expectRefusal([Uint8Array.of(0x85)], TruncatedFrameError, { end: true })
})

test('a clean end where a message is required is StreamEndedError; readOrEnd gives undefined', async () => {
  await expectRefusal([], StreamEndedError, { end: true })
  const [outbound, inbound] = await streamPair()
  await outbound.close()
  assert.is(await messageChannel(inbound).readBytesOrEnd(), undefined)
})

test('a read that gets nothing times out and resets the stream', async () => {
  const [outbound, inbound] = await streamPair()
  const remoteClosed = closed(outbound)
  const channel = messageChannel(inbound, { messageTimeoutMs: 200 })
  // Half a frame, then silence: the timeout covers the whole read, not just its start.
  outbound.send(encodeVarint(10))
  outbound.send(Uint8Array.of(1, 2))
  let err: unknown
  try { await channel.readBytes() } catch (e) { err = e }
  assert.instance(err, StreamTimeoutError)
  assert.is((err as StreamTimeoutError).code, 'ERR_STREAM_TIMEOUT')
  assert.is(inbound.status, 'aborted')
  assert.ok(await remoteClosed !== undefined)
})

test('a caller abort resets the stream and rejects with the abort reason', async () => {
  const [, inbound] = await streamPair()
  const controller = new AbortController()
  const channel = messageChannel(inbound, { signal: controller.signal })
  const pending = channel.readBytes()
  controller.abort(new Error('shutting down'))
  try { await pending; assert.unreachable() } catch (e) { assert.is((e as Error).message, 'shutting down') }
  assert.is(inbound.status, 'aborted')
})

test('writing an oversized message is refused locally without touching the stream', async () => {
  const [outbound] = await streamPair()
  const channel = messageChannel(outbound, { maxMessageBytes: 16 })
  try { await channel.writeBytes(new Uint8Array(17)); assert.unreachable() } catch (e) { assert.instance(e, FrameTooLargeError) }
  try { await channel.write({ text: 'x'.repeat(32) }); assert.unreachable() } catch (e) { assert.instance(e, FrameTooLargeError) }
  assert.is(outbound.status, 'open')
  await channel.writeBytes(new Uint8Array(16))
})

test('frames at exactly the limit pass; bulk frames flow with backpressure', async () => {
  const [outbound, inbound] = await streamPair()
  const max = 64 * 1024
  const a = messageChannel(outbound, { maxMessageBytes: max })
  const b = messageChannel(inbound, { maxMessageBytes: max })
  const count = 64
  const writer = (async () => {
    for (let i = 0; i < count; i++) await a.writeBytes(new Uint8Array(max).fill(i))
    await a.close()
  })()
  let received = 0
  while (true) {
    const chunk = await b.readBytesOrEnd()
    if (chunk === undefined) break
    assert.is(chunk.length, max)
    assert.is(chunk[max - 1], received)
    received++
  }
  await writer
  assert.is(received, count)
})

test('varints: round trip, canonical form, bounds', () => {
  for (const n of [0, 1, 127, 128, 300, 16383, 16384, 1 << 20, 2 ** 40, 2 ** 53 - 1]) {
    const enc = encodeVarint(n)
    const dec = decodeVarint(enc)
    assert.equal(dec, { kind: 'value', value: n, bytes: enc.length })
  }
  assert.equal(decodeVarint(Uint8Array.of(0x80)), { kind: 'incomplete' })
  assert.equal(decodeVarint(Uint8Array.of(0x80, 0x00)), { kind: 'non-canonical' })
  assert.equal(decodeVarint(new Uint8Array(9).fill(0xff)), { kind: 'overlong' })
  assert.throws(() => encodeVarint(-1))
})

test('schema helpers: optional, tagged, arrays, bounds', () => {
  const Msg = s.tagged({
    a: s.object({ type: s.literal('a'), n: s.number({ min: 0, max: 10 }), tags: s.array(s.oneOf(['x', 'y'] as const), { maxItems: 2 }) }),
    b: s.object({ type: s.literal('b'), ok: s.boolean(), note: s.optional(s.string({ maxLength: 3 })) })
  })
  assert.equal(Msg({ type: 'a', n: 3, tags: ['x'] }), { type: 'a', n: 3, tags: ['x'] })
  assert.equal(Msg({ type: 'b', ok: true }), { type: 'b', ok: true })
  const bad: Array<[unknown, string]> = [
    [{ type: 'c' }, '$.type'],
    [{ type: 'a', n: 11, tags: [] }, '$.n'],
    [{ type: 'a', n: 1.5, tags: [] }, '$.n'],
    [{ type: 'a', n: 1, tags: ['x', 'y', 'x'] }, '$.tags'],
    [{ type: 'a', n: 1, tags: ['z'] }, '$.tags[0]'],
    [{ type: 'b', ok: 'yes' }, '$.ok'],
    [{ type: 'b', ok: true, note: 'long' }, '$.note'],
    [JSON.parse('{"type":"b","ok":true,"__proto__":{"x":1}}'), '$.__proto__']
  ]
  for (const [v, path] of bad) {
    try { Msg(v); assert.unreachable(path) } catch (e) {
      assert.instance(e, MessageSchemaError)
      assert.is((e as MessageSchemaError).path, path)
    }
  }
  assert.throws(() => s.bigintString({ max: 100n })('101'), (e: Error) => e instanceof MessageSchemaError)
  assert.throws(() => s.bigintString()('-1'), (e: Error) => e instanceof MessageSchemaError)
  assert.throws(() => s.bigintString()('007'), (e: Error) => e instanceof MessageSchemaError)
  assert.is(s.bigintString({ min: -5n })('-5'), -5n)
})

test.run()
