// The admin_* namespace: who this daemon is, its peers, connecting to a peer, stopping it.
import type { RpcServer } from '../rpc/server.ts'
import { appError } from '../rpc/errors.ts'
import { object, array, string, integer, nullable, record, address, ok, peer } from '../rpc/results.ts'
import { DialFailedError, type P2PHost } from '../../p2p/index.ts'
import type { NetworkFile } from '../../contracts/index.ts'

/** The parts of the daemon the admin methods use. */
export interface AdminParts {
  keys: { peerId: string, ethAddress: string }
  p2p: Pick<P2PHost, 'addresses' | 'peers' | 'connect' | 'reachability'>
  options: { roles: readonly string[] }
  network: Pick<NetworkFile, 'chainId' | 'contracts' | 'name'> | null
  version: string
  stop: () => Promise<void>
}

/** How long admin_connect waits for a dial before answering PeerUnreachable. */
export const CONNECT_TIMEOUT_MS = 15_000

export function registerAdminMethods (rpc: RpcServer, daemon: AdminParts): void {
  rpc.register({
    name: 'admin_info',
    readOnly: true,
    summary: 'Identity and configuration of this daemon.',
    params: [],
    result: object({
      peerId: string('libp2p peer id'),
      addresses: array(string('multiaddr')),
      reachability: string('public, relayed (only through a relay slot), local (private or loopback addresses only) or none'),
      roles: array(string('buyer, seller or node')),
      ethAddress: string('this daemon\'s Ethereum account'),
      chainId: nullable(integer()),
      contracts: nullable(record(address(), 'contract name -> address')),
      network: nullable(string('network name')),
      version: string()
    }, { description: 'identity and configuration of this daemon' }),
    errors: [],
    handler: () => ({
      peerId: daemon.keys.peerId,
      addresses: daemon.p2p.addresses(),
      reachability: daemon.p2p.reachability(),
      roles: daemon.options.roles,
      ethAddress: daemon.keys.ethAddress,
      chainId: daemon.network?.chainId ?? null,
      contracts: daemon.network?.contracts ?? null,
      network: daemon.network?.name ?? null,
      version: daemon.version
    })
  })

  rpc.register({
    name: 'admin_peers',
    readOnly: true,
    summary: 'Connected peers with their addresses.',
    params: [],
    result: array(peer, 'connected peers'),
    errors: [],
    handler: () => daemon.p2p.peers()
  })

  rpc.register({
    name: 'admin_connect',
    summary: 'Dials a peer by multiaddr (which must end in /p2p/<peer id>).',
    params: [{ name: 'multiaddr', type: 'multiaddr', description: 'e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3Koo…' }],
    result: ok({ peerId: string() }),
    errors: ['Rejected', 'PeerUnreachable'],
    handler: async (p, ctx) => {
      const peerId = /\/p2p\/([^/]+)$/.exec(p.multiaddr)?.[1]
      if (peerId === undefined) throw appError('Rejected', 'multiaddr must end in /p2p/<peer id>', { param: 'multiaddr' })
      // A failed dial is a DialFailedError (RPC_ERROR_TABLE: PeerUnreachable); so is running out of our time.
      const timeout = AbortSignal.timeout(CONNECT_TIMEOUT_MS)
      try {
        await daemon.p2p.connect(p.multiaddr, { signal: AbortSignal.any([ctx.signal, timeout]) })
      } catch (err) {
        if (timeout.aborted) throw new DialFailedError(`could not connect to ${p.multiaddr} within ${CONNECT_TIMEOUT_MS} ms`, { cause: err })
        throw err
      }
      return { ok: true, peerId }
    }
  })

  rpc.register({
    name: 'admin_shutdown',
    summary: 'Answers, then stops the daemon gracefully.',
    params: [],
    result: ok(),
    errors: [],
    handler: () => {
      // Answer first: the stop runs after this response is written.
      setTimeout(() => { void daemon.stop() }, 50)
      return { ok: true }
    }
  })
}
