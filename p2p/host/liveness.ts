// Closes connections whose peer stopped answering: after `maxFailedPings` pings in a row without an
// answer, not after one.
//
// Hand-written in place of libp2p's connection monitor (libp2p 3.3, src/connection-monitor.ts),
// which we turn off: it pings every connection and either aborts it on the first ping not answered
// within its adaptive timeout (under load that is routine, and each abort took every stream on the
// connection: the main way gossip streams were lost, BENCHMARKS.md "Network") or never aborts; it
// has no count, no event and no hook to add one (js-libp2p #3504, open, would abort only after a
// minute without bytes read; unreleased). With it never aborting, a connection to a peer that
// vanished without closing (a machine gone, a NAT mapping dropped, a process stopped) stayed until
// TCP gave up, about 15 minutes (the pings themselves keep the socket from idling out). The ping
// service (@libp2p/ping) pings a peer over whichever of its connections the connection manager
// picks, dialling one if needed; a connection's liveness is judged on that connection, so the ping
// here is its protocol (/ipfs/ping/1.0.0, answered by the ping service) run on each connection.
import { UnsupportedProtocolError } from '@libp2p/interface'
import { byteStream } from '@libp2p/utils'
import * as C from '../constants.ts'
import { deadline } from '../deadline.ts'
import { ConnectionUnresponsiveError } from '../errors.ts'
import type { Connection } from '@libp2p/interface'
import type { Logger } from '../../config/index.ts'

/** What a ping carries (the ping protocol's fixed length: the peer echoes it). */
const PING_BYTES = 32

export interface LivenessLimits {
  /** Pings in a row without an answer after which a connection is closed. Default CONNECTION_MAX_FAILED_PINGS. */
  maxFailedPings?: number
  /** How long a ping waits for its answer. Default CONNECTION_PING_TIMEOUT_MS. */
  timeoutMs?: number
}

/** What one round started and what the rounds before it ended with. */
export interface LivenessRound { pinged: number, closed: number }

/**
 * A round pings each open connection that has no ping in flight (so a peer that answers slowly
 * is pinged no faster than it answers), counts each connection's pings in a row without an
 * answer (one answer resets it), and closes a connection at `maxFailedPings`. A peer that does not
 * speak the ping protocol said so, which counts as an answer (as in libp2p's monitor).
 */
export function connectionLiveness (connections: () => Connection[], protocol: string, log: Logger, limits: LivenessLimits = {}): { round: () => LivenessRound } {
  const maxFailed = limits.maxFailedPings ?? C.CONNECTION_MAX_FAILED_PINGS
  const timeoutMs = limits.timeoutMs ?? C.CONNECTION_PING_TIMEOUT_MS
  const failures = new WeakMap<Connection, number>()
  const inFlight = new WeakSet<Connection>()
  let closed = 0

  async function ping (conn: Connection): Promise<boolean> {
    const d = deadline(timeoutMs)
    try {
      const stream = await conn.newStream(protocol, { signal: d.signal, runOnLimitedConnection: true })
      try {
        const bytes = byteStream(stream)
        const sent = crypto.getRandomValues(new Uint8Array(PING_BYTES))
        const [, echoed] = await Promise.all([bytes.write(sent, { signal: d.signal }), bytes.read({ bytes: PING_BYTES, signal: d.signal })])
        await stream.close({ signal: d.signal })
        return echoed.byteLength === PING_BYTES
      } catch (err) {
        stream.abort(err as Error)
        throw err
      }
    } catch (err) {
      return err instanceof UnsupportedProtocolError || (err as Error).name === 'UnsupportedProtocolError'
    } finally {
      d.clear()
    }
  }

  function check (conn: Connection): void {
    inFlight.add(conn)
    void ping(conn).then((answered) => {
      inFlight.delete(conn)
      if (conn.status !== 'open') return
      if (answered) {
        failures.delete(conn)
        return
      }
      const failed = (failures.get(conn) ?? 0) + 1
      failures.set(conn, failed)
      if (failed < maxFailed) {
        log.debug('ping not answered', { peerId: conn.remotePeer.toString(), failed, maxFailed })
        return
      }
      log.info('closing a connection whose peer answers no ping', { peerId: conn.remotePeer.toString(), remoteAddr: conn.remoteAddr.toString(), failed })
      closed++
      conn.abort(new ConnectionUnresponsiveError(failed))
    }).catch((err: unknown) => { log.debug('connection liveness check failed', { error: err }) })
  }

  return {
    round () {
      let pinged = 0
      for (const conn of connections()) {
        if (conn.status !== 'open' || inFlight.has(conn)) continue
        check(conn)
        pinged++
      }
      const round = { pinged, closed }
      closed = 0
      return round
    }
  }
}
