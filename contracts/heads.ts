// New chain heads as the chain node pushes them (eth_subscribe "newHeads" over a WebSocket), so that a
// daemon learns of a block when it is mined rather than at its next eth_blockNumber poll. Why it matters:
// a buyer gossips its demand as soon as its post to BDBC is mined, and every daemon's demand validator
// needs that block read before it forwards the demand (p2p/demand/posted.ts); with a poll every 100 ms
// the demand usually arrived first (17 of 19 daemons in bench/network, 20 daemons) and each daemon made
// a chain read of its own on the demand's path. Pushed, the block is read ahead on most daemons.
// Hand-written rather than ethers' WebSocketProvider: that one does not reconnect (a dropped socket would
// end the heads silently) and would carry every request; here the socket carries only the subscription,
// is opened again after a drop, and the client's HTTP polling goes on underneath as the safety net
// (slowed to PUSHED_HEADS_POLL_MS while the subscription is up, fast again while it is down).
// Node 22's global WebSocket (undici) is the transport.

/** First wait before opening a dropped or refused head subscription again (ms); doubled per failure. */
export const HEADS_RECONNECT_MIN_MS = 500
/** Longest wait between two attempts (ms): a chain node without WebSocket costs one attempt per this. */
export const HEADS_RECONNECT_MAX_MS = 30_000
/**
 * How often a client polls eth_blockNumber while the heads come pushed (ms); its own pollingInterval (100 ms
 * on a devnet) again once the subscription is down. Why: every daemon polled at 100 ms whether or not its
 * heads came pushed, ~10 calls a second each, ~490/s from 50 daemons on one anvil, for blocks the push had
 * already told of. The slow poll stays as the safety net for a subscription that is up but stalls (a node
 * that stops pushing without closing the socket): a block is then seen at most this late.
 */
export const PUSHED_HEADS_POLL_MS = 5000

/** Whether the subscription is up (the node accepted eth_subscribe) or down (closed after being up). */
export type HeadsState = 'up' | 'down'

export interface HeadSubscription {
  /** Closes the socket and stops reconnecting. */
  stop: () => void
}

/** The WebSocket address of a JSON-RPC HTTP address (anvil, geth and most providers serve both on one port), or null. */
export function headsUrlOf (rpcUrl: string): string | null {
  let u: URL
  try {
    u = new URL(rpcUrl)
  } catch {
    return null
  }
  if (u.protocol === 'http:') u.protocol = 'ws:'
  else if (u.protocol === 'https:') u.protocol = 'wss:'
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') return null
  return u.toString()
}

export interface SubscribeHeadsOptions {
  reconnectMinMs?: number
  reconnectMaxMs?: number
  /** Called with 'up' when the node accepts the subscription, and 'down' when that socket closes (not on stop). */
  onState?: (state: HeadsState) => void
}

/**
 * Calls `onHead` with the number of each head the node at `url` (ws: or wss:) pushes, in the order pushed
 * (a reorganisation may repeat a number or go back: the caller decides). Opens the socket again after it
 * drops or fails, waiting HEADS_RECONNECT_MIN_MS doubling up to HEADS_RECONNECT_MAX_MS.
 */
export function subscribeHeads (url: string, onHead: (blockNumber: number) => void, opts: SubscribeHeadsOptions = {}): HeadSubscription {
  const minMs = opts.reconnectMinMs ?? HEADS_RECONNECT_MIN_MS
  const maxMs = opts.reconnectMaxMs ?? HEADS_RECONNECT_MAX_MS
  let stopped = false
  let socket: WebSocket | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let wait = minMs
  let up = false
  const setState = (now: boolean): void => {
    if (up === now) return
    up = now
    opts.onState?.(now ? 'up' : 'down')
  }

  const open = (): void => {
    timer = undefined
    if (stopped) return
    let ws: WebSocket
    try {
      ws = new WebSocket(url)
    } catch {
      retry()
      return
    }
    socket = ws
    ws.onopen = () => { ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] })) }
    ws.onmessage = (ev: MessageEvent) => {
      let msg: { id?: number, error?: unknown, method?: string, params?: { result?: { number?: unknown } } }
      try {
        msg = JSON.parse(String(ev.data))
      } catch {
        return
      }
      // The node refused the subscription (no pub/sub over this transport): the polling carries on alone.
      if (msg.id === 1 && msg.error !== undefined) { ws.close(); return }
      if (msg.id === 1) { wait = minMs; setState(true); return }
      const n = msg.method === 'eth_subscription' ? msg.params?.result?.number : undefined
      if (typeof n !== 'string') return
      const blockNumber = Number(n)
      if (Number.isSafeInteger(blockNumber) && blockNumber >= 0) onHead(blockNumber)
    }
    // Either ends this socket and schedules the next attempt, once. Node 22's WebSocket (undici) fires only
    // error, never close, when the handshake fails (connection refused, or cut during the upgrade): on close
    // alone, one failed attempt would have ended the reconnecting for good.
    const lost = (): void => {
      if (socket !== ws) return // stopped (stop() closed it), or already lost
      socket = undefined
      try { ws.close() } catch {}
      setState(false)
      retry()
    }
    ws.onerror = lost
    ws.onclose = lost
  }

  const retry = (): void => {
    if (stopped || timer !== undefined) return
    timer = setTimeout(open, wait)
    timer.unref()
    wait = Math.min(maxMs, wait * 2)
  }

  open()
  return {
    stop: () => {
      stopped = true
      clearTimeout(timer)
      timer = undefined
      socket?.close()
      socket = undefined
    }
  }
}
