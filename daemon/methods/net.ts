// The net_* namespace: the p2p layer as a user can probe it. DHT provide/find for keys of the
// form `sdte:<kind>:<name>`, and publish/subscribe on debug topics (`/sdte/debug/<name>`) with a
// bounded buffer of received messages. Protocol topics (demands) are not writable here: they have
// their own methods and validators.
import type { RpcServer } from '../rpc/server.ts'
import { appError } from '../rpc/errors.ts'
import { array, integer, object, string, ok, peer } from '../rpc/results.ts'
import { checkDhtKey, p2pConstants, type P2PHost } from '../../p2p/index.ts'

export const DEBUG_TOPIC_PREFIX = '/sdte/debug/'
export const MAX_DEBUG_MESSAGE_BYTES = 4096
export const MAX_BUFFERED_MESSAGES = 100
export const MAX_DEBUG_TOPICS = 16
export const FIND_PROVIDERS_TIMEOUT_MS = 30_000
const TOPIC = /^\/sdte\/debug\/[A-Za-z0-9._-]{1,64}$/

interface ReceivedMessage { from: string, data: string, receivedAt: string }

/** The parts of the daemon the net methods use. */
export interface NetParts {
  p2p: Pick<P2PHost, 'provide' | 'findProviders' | 'subscribe' | 'publish'>
}

export function registerNetMethods (rpc: RpcServer, daemon: NetParts): void {
  const inbox = new Map<string, ReceivedMessage[]>()

  // A key the host refuses is an InvalidP2PInputError (RPC_ERROR_TABLE: Rejected).

  const checkTopic = (topic: string): void => {
    if (!TOPIC.test(topic)) throw appError('Rejected', `topic must match ${DEBUG_TOPIC_PREFIX}<name> (letters, digits, . _ -)`, { param: 'topic' })
  }

  rpc.register({
    name: 'net_provide',
    summary: 'Announces this daemon in the DHT as a provider of a key such as sdte:dataset:<tag>.',
    params: [{ name: 'key', type: 'string', maxLength: p2pConstants.MAX_DHT_KEY_LENGTH, pattern: p2pConstants.DHT_KEY_PATTERN.source, description: 'sdte:<kind>:<name>' }],
    result: ok(),
    errors: ['Rejected'],
    handler: async (p) => {
      checkDhtKey(p.key)
      await daemon.p2p.provide(p.key)
      return { ok: true }
    }
  })

  rpc.register({
    name: 'net_findProviders',
    readOnly: true,
    summary: 'Finds peers that provide a DHT key.',
    params: [
      { name: 'key', type: 'string', maxLength: p2pConstants.MAX_DHT_KEY_LENGTH, pattern: p2pConstants.DHT_KEY_PATTERN.source, description: 'sdte:<kind>:<name>' },
      { name: 'limit', type: 'integer', min: 1, max: 100, required: false, description: 'at most this many (default 20)' }
    ],
    result: array(peer, 'providers of the key'),
    errors: ['Rejected'],
    handler: async (p, ctx) => {
      checkDhtKey(p.key)
      return await daemon.p2p.findProviders(p.key, {
        limit: p.limit ?? 20,
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(FIND_PROVIDERS_TIMEOUT_MS)])
      })
    }
  })

  rpc.register({
    name: 'net_subscribe',
    summary: 'Subscribes to a debug gossip topic; received messages are kept for net_messages.',
    params: [{ name: 'topic', type: 'string', maxLength: 80, pattern: TOPIC.source, description: '/sdte/debug/<name>' }],
    result: ok(),
    errors: ['Rejected'],
    handler: (p) => {
      checkTopic(p.topic)
      if (inbox.has(p.topic)) return { ok: true }
      if (inbox.size >= MAX_DEBUG_TOPICS) throw appError('Rejected', `at most ${MAX_DEBUG_TOPICS} debug topics`)
      const box: ReceivedMessage[] = []
      inbox.set(p.topic, box)
      daemon.p2p.subscribe(p.topic, msg => {
        box.push({ from: msg.from, data: Buffer.from(msg.data).toString('utf8'), receivedAt: new Date().toISOString() })
        if (box.length > MAX_BUFFERED_MESSAGES) box.shift()
      }, msg => msg.data.length <= MAX_DEBUG_MESSAGE_BYTES ? 'accept' : 'reject')
      return { ok: true }
    }
  })

  rpc.register({
    name: 'net_publish',
    summary: 'Publishes a text message on a debug gossip topic.',
    params: [
      { name: 'topic', type: 'string', maxLength: 80, pattern: TOPIC.source, description: '/sdte/debug/<name>' },
      { name: 'message', type: 'string', maxLength: MAX_DEBUG_MESSAGE_BYTES, description: 'UTF-8 text' }
    ],
    result: ok({ recipients: integer('peers it was sent to') }),
    errors: ['Rejected', 'Unavailable'],
    handler: async (p) => {
      checkTopic(p.topic)
      // No subscriber yet: NoTopicPeersError, which the error table answers as Unavailable.
      const { recipients } = await daemon.p2p.publish(p.topic, new TextEncoder().encode(p.message))
      return { ok: true, recipients }
    }
  })

  rpc.register({
    name: 'net_messages',
    readOnly: true,
    summary: 'Messages received on a subscribed debug topic, oldest first (the last 100).',
    params: [{ name: 'topic', type: 'string', maxLength: 80, pattern: TOPIC.source, description: '/sdte/debug/<name>' }],
    result: array(object({ from: string('peer id of the author'), data: string('UTF-8 text'), receivedAt: string('ISO 8601') }), 'oldest first'),
    errors: ['Rejected', 'NotFound'],
    handler: (p) => {
      checkTopic(p.topic)
      const box = inbox.get(p.topic)
      if (box === undefined) throw appError('NotFound', `not subscribed to ${p.topic} (call net_subscribe first)`)
      return box
    }
  })
}
