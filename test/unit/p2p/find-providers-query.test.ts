// findProviders leaves no DHT query running once it has returned (p2p/host/dht.ts): the query it
// consumes is stopped by its own signal, not only by breaking out of the loop. libp2p hands the host
// its content routers' merged iterator (it-merge), whose return() answers at once while kad-dht's
// query, parked on a peer's response, goes on with its dials and streams: the fake below does the same.
// Only a lookup that reaches its limit breaks out of a query still running: a pass that finds fewer ends
// because its query ended (done or failed) or because the lookup's own signal (deadline, caller, host
// lifetime) aborted it, and that signal was handed to the query before the fix too. So that case cannot
// tell the fix from the old code and is not tested here (a case for it passed on both).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createDht } from '../../../p2p/host/dht.ts'
import { resolveP2PHostOptions } from '../../../p2p/host/options.ts'
import { silentLogger } from '../../../config/index.ts'
import type { PeerId } from '@libp2p/interface'
import type { SdteLibp2p } from '../../../p2p/host/types.ts'

const peer = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

/** A content routing whose query yields `providers`, then waits for a response that never comes, until its signal is aborted. */
function parkedQuery (providers: PeerId[]): { findProviders: (cid: unknown, o: { signal: AbortSignal }) => AsyncIterable<{ id: PeerId, multiaddrs: [] }>, running: () => number, signals: AbortSignal[] } {
  let running = 0
  const signals: AbortSignal[] = []
  return {
    running: () => running,
    signals,
    findProviders: (_cid, { signal }) => {
      signals.push(signal)
      running++
      // The query's own end: its signal aborted (what kad-dht's query manager listens to).
      const ended = new Promise<void>(resolve => {
        if (signal.aborted) resolve()
        signal.addEventListener('abort', () => resolve(), { once: true })
      }).then(() => { running-- })
      let i = 0
      return {
        [Symbol.asyncIterator]: () => ({
          next: async () => {
            if (i < providers.length) return { done: false, value: { id: providers[i++], multiaddrs: [] } }
            await ended
            return { done: true, value: undefined }
          },
          // As it-merge's: the consumer is let go at once; the source is not awaited.
          return: async () => ({ done: true, value: undefined })
        })
      }
    }
  }
}

function dhtOver (routing: ReturnType<typeof parkedQuery>, selfId: string): ReturnType<typeof createDht> {
  const node = {
    contentRouting: { findProviders: routing.findProviders },
    peerStore: { get: async () => { throw new Error('unknown peer') } },
    services: {
      dht: {
        providers: { addProvider: async () => {}, removeProvider: async () => {} },
        routingTable: { size: 3, kBucketSize: 20, addEventListener: () => {} }
      }
    }
  } as unknown as SdteLibp2p
  const lifetime = new AbortController()
  return createDht(node, resolveP2PHostOptions({}), silentLogger.forComponent('test'), {
    selfId, status: () => 'started', requireStarted: () => {}, lifetime: () => lifetime.signal
  })
}

test('a lookup that found its limit leaves no query running', async () => {
  const [self, a, b] = await Promise.all([peer(), peer(), peer()])
  const routing = parkedQuery([a, b])
  const dht = dhtOver(routing, self.toString())
  const found = await dht.findProviders('sdte:dataset:stall', { limit: 1 })
  assert.equal(found.map(p => p.peerId), [a.toString()])
  assert.is(routing.signals.length, 1)
  assert.ok(routing.signals[0].aborted, 'the query\'s signal is aborted once findProviders returned')
  await Promise.resolve()
  assert.is(routing.running(), 0, 'no query left running')
})

test.run()
