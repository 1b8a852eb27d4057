// /sdte/data/2: the seller streams its encrypted dataset to an enclave, resuming where the enclave
// left off. Chunks travel as raw frames (no hex, no JSON): this is the bulk path. Shaped like p2p/echo.
import { clientExchange, decodeJsonMessage, protocolEndpoint, readReply, RefuseRequest, refusal, type ProtocolLimits } from '../messages/index.ts'
import { P2POptionsError, ProtocolViolationError, StreamTimeoutError } from '../errors.ts'
import { deadline } from '../deadline.ts'
import * as C from './constants.ts'
import { DataAck, DataDone, DataOpen, DataStatus } from './schema.ts'
import type { P2PHost } from '../host/index.ts'

export { DataAck, DataDone, DataOpen, DataStatus } from './schema.ts'
export * as dataConstants from './constants.ts'

/** The node's side. Each may throw RefuseRequest to stop the delivery with a reason. */
export interface DataHandlers {
  /** Checks the delivery against the chain and opens it in the enclave; returns where to resume. */
  open: (remotePeer: string, req: DataOpen) => Promise<DeliveryState>
  /** Consumes chunks `from`..chunks-1 (into the enclave); returns whether it now holds the whole dataset. */
  receive: (req: DataOpen, from: number, chunks: AsyncIterable<Uint8Array>) => Promise<DeliveryState>
  /**
   * Takes the seller's acknowledgement of the receipt this stream carried (the delivery `open` checked moments
   * ago, on this stream); returns the state with it. Without it, a receipt is never acknowledged here.
   */
  ack?: (req: DataOpen, ack: string) => Promise<DeliveryState>
}

/** Where a delivery stands in the enclave: where to resume, and once complete its receipt and whether it was acknowledged. */
export interface DeliveryState { nextChunk: number, complete: boolean, receipt?: string, acked?: boolean }

export interface DataOptions extends ProtocolLimits {
  /** The node's wait for the seller's data-ack after the status with the receipt. Default DATA_ACK_TIMEOUT_MS. */
  ackTimeoutMs?: number
}

export interface DeliveryProgress { sentChunks: number, totalChunks: number, sentBytes: number }

export interface DataProtocol {
  readonly protocol: string
  start: (handlers: DataHandlers) => Promise<void>
  stop: () => Promise<void>
  /**
   * Sends a dataset; `chunkAt(i)` gives encrypted chunk i. Resolves with the node's final status. With `acknowledge`,
   * a complete status whose receipt is not acknowledged yet goes to it (it checks the receipt, keeps it, and returns
   * the seller's ack, or undefined for none), and the ack goes back on the same stream.
   */
  deliver: (nodePeer: string, open: Omit<DataOpen, 'type'>, chunkAt: (index: number) => Promise<Uint8Array> | Uint8Array,
    o?: { signal?: AbortSignal, onProgress?: (p: DeliveryProgress) => void, acknowledge?: (status: DataStatus) => Promise<string | undefined> }) => Promise<DataStatus>
}

export function dataProtocol (host: P2PHost, options: DataOptions = {}): DataProtocol {
  const endpoint = protocolEndpoint(host, C, options)
  const ackTimeoutMs = options.ackTimeoutMs ?? C.DATA_ACK_TIMEOUT_MS
  if (!Number.isSafeInteger(ackTimeoutMs) || ackTimeoutMs <= 0) throw new P2POptionsError(`ackTimeoutMs must be a positive integer, got ${String(ackTimeoutMs)}`)

  return {
    protocol: endpoint.protocol,
    async start (handlers) {
      await endpoint.serve(async (channel, context) => {
        const req = await channel.read(DataOpen)
        const extraChunk = (): ProtocolViolationError => new ProtocolViolationError(`more than the ${req.chunks} chunks announced`)
        // Only the schema's fields: the seller's schema is strict, and a handler may return a richer object.
        const status = (at: DeliveryState): DataStatus => {
          const st: DataStatus = { type: 'data-status', nextChunk: at.nextChunk, complete: at.complete }
          if (at.receipt !== undefined) st.receipt = at.receipt
          if (at.acked !== undefined) st.acked = at.acked
          return st
        }
        let done = false
        // The frame after the last chunk must be DataDone: anything else (another chunk) breaks the announced count.
        const readDone = async (): Promise<void> => {
          const body = await channel.readBytesOrEnd()
          if (body === undefined) throw new ProtocolViolationError(`delivery ended without data-done after ${req.chunks} chunks`)
          try {
            decodeJsonMessage(body, DataDone)
          } catch {
            throw extraChunk()
          }
        }
        // The seller's ack, or undefined when it ended its side without one; within ackTimeoutMs, not a frame's or the
        // whole delivery's time. Past it the seller is taken as not acknowledging: the delivery stays as it is
        // (complete, the receipt unacknowledged; no ack handler runs) and the stream is reset, since a silent seller
        // would not end it either. The timeout error ends the handler (the host logs it at debug).
        const readAck = async (): Promise<DataAck | undefined> => {
          const d = deadline(ackTimeoutMs)
          try {
            return await channel.readOrEnd(DataAck, { signal: d.signal })
          } catch (err) {
            if (d.timedOut()) throw new StreamTimeoutError('the seller\'s data-ack', ackTimeoutMs)
            throw err
          } finally {
            d.clear()
          }
        }
        try {
          let at = await handlers.open(context.remotePeer, req)
          await channel.write(status(at))
          if (!at.complete) {
            const from = at.nextChunk
            let next = from
            at = await handlers.receive(req, from, (async function * () {
              for (; next < req.chunks; next++) {
                const chunk = await channel.readBytesOrEnd()
                if (chunk === undefined) throw new ProtocolViolationError(`delivery ended at chunk ${next} of ${req.chunks}`)
                yield chunk
              }
              // The seller ends its chunks with DataDone. Check it here, inside the iteration, so
              // that a delivery with extra chunks fails for the receiver too, before it counts as complete.
              await readDone()
              done = true
            })())
            // The receiver may be done before the stream is (it already held the rest, e.g. from a
            // delivery that was still going in when this one opened): take the announced rest, unread.
            for (; next < req.chunks; next++) {
              if (await channel.readBytesOrEnd() === undefined) throw new ProtocolViolationError(`delivery ended at chunk ${next} of ${req.chunks}`)
            }
          }
          if (!done) await readDone()
          await channel.write(status(at))
          // The acknowledgement on this same stream (no second exchange): only for a receipt sent here and not yet
          // acknowledged; otherwise the seller's end comes next.
          const ackable = at.complete && at.receipt !== undefined && at.acked !== true && handlers.ack !== undefined
          const ack = ackable ? await readAck() : undefined
          if (ack !== undefined && handlers.ack !== undefined) {
            at = await handlers.ack(req, ack.ack)
            await channel.write(status(at))
          }
          if (await channel.readBytesOrEnd() !== undefined) throw new ProtocolViolationError('more than one delivery on one stream')
        } catch (err) {
          if (!(err instanceof RefuseRequest)) throw err
          await channel.write(refusal(err))
          // The seller reads our answer only after sending all its chunks: take (and drop) the rest,
          // at most the announced count, so it is not stalled by backpressure and gets the reason.
          // It may also reset once it has the refusal; either way the exchange is over.
          try {
            await channel.close()
            // The announced chunks and DataDone (and an ack) at most.
            for (let n = 0; n <= req.chunks + 1; n++) {
              if (await channel.readBytesOrEnd() === undefined) return
            }
            channel.abort(extraChunk())
          } catch {}
          return
        }
        await channel.close()
      })
    },
    stop: endpoint.stop,
    async deliver (nodePeer, open, chunkAt, o = {}) {
      const channel = await endpoint.open(nodePeer, o.signal)
      return await clientExchange(channel, async () => {
        await channel.write({ type: 'data-open', ...open })
        const at = await readReply(channel, 'data-status', DataStatus)
        if (!at.complete) {
          let sentBytes = 0
          for (let i = at.nextChunk; i < open.chunks; i++) {
            const chunk = await chunkAt(i)
            await channel.writeBytes(chunk)
            sentBytes += chunk.length
            if (o.onProgress !== undefined && ((i + 1) % C.PROGRESS_EVERY_CHUNKS === 0 || i + 1 === open.chunks)) {
              o.onProgress({ sentChunks: i + 1, totalChunks: open.chunks, sentBytes })
            }
          }
        }
        await channel.write({ type: 'data-done' })
        const status = await readReply(channel, 'data-status', DataStatus)
        const ack = status.complete && status.receipt !== undefined && status.acked !== true && o.acknowledge !== undefined
          ? await o.acknowledge(status)
          : undefined
        if (ack === undefined) {
          await channel.close()
          return status
        }
        await channel.write({ type: 'data-ack', ack })
        await channel.close()
        return await readReply(channel, 'data-status', DataStatus)
      })
    }
  }
}
