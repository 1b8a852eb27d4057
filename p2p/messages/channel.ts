// A message channel over one libp2p v3 stream: varint length-prefixed frames, each either a JSON
// message checked by a schema or raw bytes (bulk data), with a size cap and one timeout per
// operation. Any failure (malformed, oversized, truncated, schema-invalid frame, timeout, caller
// abort) aborts the stream, i.e. resets it for the remote, and rejects with a typed error; the
// channel then refuses further use with that same error.
//
// Frame: varint(length) || body, 0 <= length <= maxMessageBytes. A JSON body is UTF-8 JSON text;
// bigints are written as decimal strings (the schema helpers read them back as bigint).
import { Uint8ArrayList } from 'uint8arraylist'
import {
  FrameTooLargeError,
  MalformedFrameError,
  MessageSchemaError,
  P2POptionsError,
  P2PStateError,
  StreamFailedError,
  StreamEndedError,
  StreamTimeoutError,
  TruncatedFrameError
} from '../errors.ts'
import { DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MESSAGE_TIMEOUT_MS, MAX_VARINT_BYTES } from './constants.ts'
import { decodeVarint, encodeVarint } from './varint.ts'
import { deadline } from '../deadline.ts'
import type { Schema } from './schema.ts'
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'

export interface MessageChannelOptions {
  /** Largest frame body read or written, in bytes. Default 1 MiB. */
  maxMessageBytes?: number
  /** Timeout for each read, write and the close, in ms. Default 10 s. */
  messageTimeoutMs?: number
  /**
   * Bytes buffered ahead of the reader before the stream is paused (read backpressure).
   * Default 2 × maxMessageBytes + the prefix, so one whole frame can always be buffered.
   */
  maxBufferedBytes?: number
  /** Aborts every operation of the channel, e.g. a whole-exchange deadline. */
  signal?: AbortSignal
}

export interface OperationOptions {
  /** An extra signal for this one operation (the per-operation timeout still applies). */
  signal?: AbortSignal
}

export interface MessageChannel {
  /** The underlying stream. Do not read from it directly while the channel is in use. */
  readonly stream: Stream
  readonly maxMessageBytes: number
  readonly messageTimeoutMs: number
  /** Reads one JSON frame and checks it with `schema`. A clean end of stream is a StreamEndedError. */
  read: <T>(schema: Schema<T>, options?: OperationOptions) => Promise<T>
  /** Like read, but resolves undefined if the remote closed its side cleanly at a frame boundary. */
  readOrEnd: <T>(schema: Schema<T>, options?: OperationOptions) => Promise<T | undefined>
  /** Writes one JSON frame (bigints as decimal strings). */
  write: (message: unknown, options?: OperationOptions) => Promise<void>
  /** Reads one raw bytes frame. */
  readBytes: (options?: OperationOptions) => Promise<Uint8Array>
  /** Reads one raw bytes frame, or undefined at a clean end of stream. */
  readBytesOrEnd: (options?: OperationOptions) => Promise<Uint8Array | undefined>
  /** Writes one raw bytes frame. */
  writeBytes: (bytes: Uint8Array, options?: OperationOptions) => Promise<void>
  /** Closes our writing side (the remote sees a clean end); the remote may still send. */
  close: (options?: OperationOptions) => Promise<void>
  /** Resets the stream with `err`; later calls reject with it. */
  abort: (err: Error) => void
}

const textDecoder = new TextDecoder('utf-8', { fatal: true })
const textEncoder = new TextEncoder()

function positiveInteger (name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new P2POptionsError(`${name} must be a positive integer, got ${String(value)}`)
  return value
}

/**
 * libp2p sometimes rejects with the stream's close Event rather than an Error: use the error the
 * event carries, else say what happened instead of "[object Event]".
 */
function asError (err: unknown, what: string): Error {
  if (err instanceof Error) return err
  const inner = (err as { error?: unknown } | null)?.error
  if (inner instanceof Error) return inner
  const type = (err as { type?: unknown } | null)?.type
  return new StreamFailedError(typeof type === 'string' ? `${what} failed: the stream emitted "${type}"` : `${what} failed: ${String(err)}`)
}

/** JSON text for a message; bigints become decimal strings. */
export function encodeJsonMessage (message: unknown): Uint8Array {
  const text = JSON.stringify(message, (_key, value: unknown) => typeof value === 'bigint' ? value.toString() : value)
  if (text === undefined) throw new TypeError('message is not JSON-serialisable')
  return textEncoder.encode(text)
}

/** Parses a JSON frame body and applies the schema; throws MalformedFrameError or MessageSchemaError. */
export function decodeJsonMessage<T> (body: Uint8Array, schema: Schema<T>): T {
  let value: unknown
  try {
    value = JSON.parse(textDecoder.decode(body))
  } catch (err) {
    throw new MalformedFrameError('frame is not UTF-8 JSON', { cause: err })
  }
  try {
    return schema(value)
  } catch (err) {
    if (err instanceof MessageSchemaError) throw err
    // A schema that threw something else is still a refusal of the message, not a crash.
    throw new MessageSchemaError('$', err instanceof Error ? err.message : 'rejected by schema')
  }
}

/** The frame (prefix and body) for `body`, refusing bodies over the limit. */
export function encodeFrame (body: Uint8Array, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): Uint8ArrayList {
  if (body.byteLength > maxMessageBytes) throw new FrameTooLargeError(body.byteLength, maxMessageBytes)
  return new Uint8ArrayList(encodeVarint(body.byteLength), body)
}

export function messageChannel (stream: Stream, options: MessageChannelOptions = {}): MessageChannel {
  const maxMessageBytes = positiveInteger('maxMessageBytes', options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES)
  const messageTimeoutMs = positiveInteger('messageTimeoutMs', options.messageTimeoutMs ?? DEFAULT_MESSAGE_TIMEOUT_MS)
  const maxBufferedBytes = positiveInteger('maxBufferedBytes', options.maxBufferedBytes ?? 2 * maxMessageBytes + MAX_VARINT_BYTES)
  const channelSignal = options.signal

  // What arrived and the reader has not taken yet. Frames are decoded as their bytes arrive: `head` holds the bytes
  // before the next frame's body is known or whole (a length prefix, a small frame still coming in); a frame whose
  // body is not all there yet is copied, as it arrives, into `body`, a buffer of the frame's own length; `frames`
  // are the whole bodies in order; `decodeError` is a bad length prefix, thrown once the reader reaches it.
  // Why copy on arrival rather than keep the pieces and join them when the reader asks: the pieces are the
  // transport's buffers (a node's 1 MiB data chunk arrives as about 16 decrypted noise frames of up to 64 KiB, each
  // its own malloc'd buffer). Held until the reader took the whole frame, up to maxBufferedBytes of them outlived
  // young-generation collections and were freed only by a full one, so the main thread's malloc heap grew by tens
  // of MiB during a large delivery and glibc kept that memory afterwards (BENCHMARKS.md "fewer transport buffers
  // held"). Copied at once, a piece is garbage right after its message event; the frame's own buffer, from the
  // size glibc maps on its own (config/daemon-defaults.ts MALLOC_MMAP_THRESHOLD_), goes back to the system when
  // freed. The bytes are copied once either way (joining the pieces at the read copied them too).
  const head = new Uint8ArrayList()
  let body: { bytes: Uint8Array, filled: number } | undefined
  const frames: Uint8Array[] = []
  let framesBytes = 0
  let decodeError: Error | undefined
  /** Bytes received so far: a read waits for this to move. */
  let received = 0
  let remoteEnded = false
  let closedError: Error | undefined
  let failure: Error | undefined
  let wake: (() => void) | undefined
  // One read at a time: frames are ordered, so concurrent reads would race for the same bytes.
  let reading = false

  const buffered = (): number => head.byteLength + (body?.filled ?? 0) + framesBytes

  /** Moves the first `n` bytes of `head` into `body`. */
  const copyToBody = (into: { bytes: Uint8Array, filled: number }, n: number): void => {
    let left = n
    for (const piece of head) {
      const take = Math.min(piece.byteLength, left)
      into.bytes.set(take === piece.byteLength ? piece : piece.subarray(0, take), into.filled)
      into.filled += take
      left -= take
      if (left === 0) break
    }
    head.consume(n)
  }

  /** Decodes the frames `head` now completes. */
  const decode = (): void => {
    while (decodeError === undefined) {
      if (body !== undefined) {
        copyToBody(body, Math.min(head.byteLength, body.bytes.byteLength - body.filled))
        if (body.filled < body.bytes.byteLength) return
        frames.push(body.bytes)
        framesBytes += body.bytes.byteLength
        body = undefined
        continue
      }
      if (head.byteLength === 0) return
      const r = decodeVarint(head.subarray(0, Math.min(head.byteLength, MAX_VARINT_BYTES)))
      if (r.kind === 'incomplete') return
      if (r.kind === 'overlong') { decodeError = new MalformedFrameError(`length prefix longer than ${MAX_VARINT_BYTES} bytes`); return }
      if (r.kind === 'non-canonical') { decodeError = new MalformedFrameError('length prefix is not minimally encoded'); return }
      // Refused before the body arrives: a peer must not make us buffer more than the limit.
      if (r.value > maxMessageBytes) { decodeError = new FrameTooLargeError(r.value, maxMessageBytes); return }
      if (head.byteLength >= r.bytes + r.value) {
        // Whole already (a small message, or a frame within one piece): a view where it is in one piece.
        frames.push(head.subarray(r.bytes, r.bytes + r.value))
        framesBytes += r.value
        head.consume(r.bytes + r.value)
        continue
      }
      head.consume(r.bytes)
      // Uninitialised: every byte is written before the frame is handed out, and a frame that never completes is
      // dropped unread. Not zero-filled, so its pages are touched only as the body's bytes arrive.
      body = { bytes: Buffer.allocUnsafeSlow(r.value), filled: 0 }
    }
  }

  const notify = (): void => {
    const w = wake
    wake = undefined
    w?.()
  }
  const onMessage = (evt: StreamMessageEvent): void => {
    received += evt.data.byteLength
    // After a bad length prefix nothing more is decoded (the read that reaches it fails the stream): drop the rest.
    if (decodeError === undefined) {
      head.append(evt.data)
      decode()
    }
    // Backpressure: stop the remote (yamux stops granting window) until the reader catches up.
    if (buffered() > maxBufferedBytes && stream.readStatus === 'readable') stream.pause()
    notify()
  }
  const onRemoteCloseWrite = (): void => { remoteEnded = true; notify() }
  const onClose = (evt: StreamCloseEvent): void => {
    if (evt.error != null) closedError = evt.error
    remoteEnded = true
    notify()
  }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('remoteCloseWrite', onRemoteCloseWrite)
  stream.addEventListener('close', onClose)
  if (stream.remoteWriteStatus !== 'writable') remoteEnded = true

  const resumeIfDrained = (): void => {
    if (stream.readStatus === 'paused' && buffered() <= maxBufferedBytes / 2) stream.resume()
  }

  /** Waits for more bytes; false when no more will come. */
  async function fill (signal: AbortSignal): Promise<boolean> {
    const before = received
    while (received === before) {
      if (closedError != null) throw closedError
      if (remoteEnded) return false
      signal.throwIfAborted()
      resumeIfDrained()
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => { wake = undefined; reject(signal.reason) }
        wake = () => { signal.removeEventListener('abort', onAbort); resolve() }
        signal.addEventListener('abort', onAbort, { once: true })
      })
    }
    return true
  }

  /** One frame body, or undefined at a clean end between frames. */
  async function readFrame (signal: AbortSignal): Promise<Uint8Array | undefined> {
    while (true) {
      const frame = frames.shift()
      if (frame !== undefined) {
        framesBytes -= frame.byteLength
        resumeIfDrained()
        return frame
      }
      if (decodeError !== undefined) throw decodeError
      if (!await fill(signal)) {
        if (body !== undefined) throw new TruncatedFrameError(`stream ended after ${body.filled} of ${body.bytes.byteLength} frame bytes`)
        if (head.byteLength === 0) return undefined
        // A whole prefix would have started a body: what is left is part of one.
        throw new TruncatedFrameError(`stream ended inside a length prefix (${head.byteLength} bytes)`)
      }
    }
  }

  function fail (err: Error): Error {
    if (failure == null) failure = err
    stream.removeEventListener('message', onMessage)
    if (stream.status === 'open') stream.abort(err)
    return failure
  }

  /** Runs one operation under its own timeout plus the channel's and the caller's signals. */
  async function guarded<R> (what: string, op: OperationOptions | undefined, fn: (signal: AbortSignal) => Promise<R>): Promise<R> {
    if (failure != null) throw failure
    // Not AbortSignal.timeout/any, which Node keeps alive until the timer fires: see p2p/deadline.ts.
    const d = deadline(messageTimeoutMs, [channelSignal, op?.signal])
    try {
      return await fn(d.signal)
    } catch (err) {
      if (d.timedOut()) throw fail(new StreamTimeoutError(what, messageTimeoutMs))
      throw fail(asError(err, what))
    } finally {
      d.clear()
    }
  }

  async function writeFrame (frame: Uint8ArrayList, signal: AbortSignal): Promise<void> {
    if (!stream.send(frame)) await stream.onDrain({ signal })
  }

  async function exclusiveReadFrame (signal: AbortSignal): Promise<Uint8Array | undefined> {
    if (reading) throw new P2PStateError('concurrent reads on one message channel')
    reading = true
    try {
      return await readFrame(signal)
    } finally {
      reading = false
    }
  }

  async function readJson<T> (schema: Schema<T>, op: OperationOptions | undefined, endOk: boolean): Promise<T | undefined> {
    return await guarded('read', op, async (signal) => {
      const body = await exclusiveReadFrame(signal)
      if (body === undefined) {
        if (endOk) return undefined
        throw new StreamEndedError()
      }
      return decodeJsonMessage(body, schema)
    })
  }

  async function readRaw (op: OperationOptions | undefined, endOk: boolean): Promise<Uint8Array | undefined> {
    return await guarded('read', op, async (signal) => {
      const body = await exclusiveReadFrame(signal)
      if (body === undefined && !endOk) throw new StreamEndedError()
      return body
    })
  }

  return {
    stream,
    maxMessageBytes,
    messageTimeoutMs,
    read: async <T>(schema: Schema<T>, op?: OperationOptions) => await readJson(schema, op, false) as T,
    readOrEnd: async <T>(schema: Schema<T>, op?: OperationOptions) => await readJson(schema, op, true),
    async write (message, op) {
      // Encoding errors and oversized messages are our own bug: refuse without touching the stream.
      const frame = encodeFrame(encodeJsonMessage(message), maxMessageBytes)
      await guarded('write', op, async (signal) => { await writeFrame(frame, signal) })
    },
    readBytes: async (op) => await readRaw(op, false) as Uint8Array,
    readBytesOrEnd: async (op) => await readRaw(op, true),
    async writeBytes (bytes, op) {
      const frame = encodeFrame(bytes, maxMessageBytes)
      await guarded('write', op, async (signal) => { await writeFrame(frame, signal) })
    },
    async close (op) {
      await guarded('close', op, async (signal) => { await stream.close({ signal }) })
    },
    abort (err) { fail(err) }
  }
}
