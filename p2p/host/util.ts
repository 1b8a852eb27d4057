// Small helpers the host's parts share: parsing caller input into libp2p types (a bad value is an
// InvalidP2PInputError), and deadlines.
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { InvalidP2PInputError } from '../errors.ts'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export function parsePeerId (peerId: string): PeerId {
  try {
    return peerIdFromString(peerId)
  } catch (err) {
    throw new InvalidP2PInputError('not a peer id', { cause: err })
  }
}

export function parseMultiaddr (address: string): Multiaddr {
  try {
    return multiaddr(address)
  } catch (err) {
    throw new InvalidP2PInputError('not a multiaddr', { cause: err })
  }
}

export async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}
