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

  const buffer = new Uint8ArrayList()
  let remoteEnded = false
  let closedError: Error | undefined
  let failure: Error | undefined
  let wake: (() => void) | undefined
  // One read at a time: frames are ordered, so concurrent reads would race for the same bytes.
  let reading = false

  const notify = (): void => {
    const w = wake
    wake = undefined
    w?.()
  }
  const onMessage = (evt: StreamMessageEvent): void => {
    buffer.append(evt.data)
    // Backpressure: stop the remote (yamux stops granting window) until the reader catches up.
    if (buffer.byteLength > maxBufferedBytes && stream.readStatus === 'readable') stream.pause()
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
    if (stream.readStatus === 'paused' && buffer.byteLength <= maxBufferedBytes / 2) stream.resume()
  }

  /** Waits for more bytes; false when no more will come. */
  async function fill (signal: AbortSignal): Promise<boolean> {
    const before = buffer.byteLength
    while (buffer.byteLength === before) {
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
    let length: number
    let prefixBytes: number
    while (true) {
      const head = buffer.byteLength === 0 ? new Uint8Array(0) : buffer.subarray(0, Math.min(buffer.byteLength, MAX_VARINT_BYTES))
      const r = decodeVarint(head)
      if (r.kind === 'value') { length = r.value; prefixBytes = r.bytes; break }
      if (r.kind === 'overlong') throw new MalformedFrameError(`length prefix longer than ${MAX_VARINT_BYTES} bytes`)
      if (r.kind === 'non-canonical') throw new MalformedFrameError('length prefix is not minimally encoded')
      if (!await fill(signal)) {
        if (buffer.byteLength === 0) return undefined
        throw new TruncatedFrameError(`stream ended inside a length prefix (${buffer.byteLength} bytes)`)
      }
    }
    // Refuse before the body arrives: a peer must not make us buffer more than the limit.
    if (length > maxMessageBytes) throw new FrameTooLargeError(length, maxMessageBytes)
    buffer.consume(prefixBytes)
    while (buffer.byteLength < length) {
      if (!await fill(signal)) {
        throw new TruncatedFrameError(`stream ended after ${buffer.byteLength} of ${length} frame bytes`)
      }
    }
    const body = buffer.subarray(0, length)
    buffer.consume(length)
    resumeIfDrained()
    return body
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
