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
  /** The bootstrap peers it dialed at start: its own and the network file's. */
  bootstrap: readonly string[]
  version: string
  stop: () => Promise<void>
}

/** What a daemon with no bootstrap peer and no peer says (log at start, admin_info `warnings`), with the fix. */
export const NO_BOOTSTRAP_WARNING = 'no bootstrap peers: this daemon finds no other peer unless one dials it; ' +
  'give --bootstrap MULTIADDR (a relay\'s /ip4/.../tcp/.../p2p/...), or a network file whose "bootstrap" lists one (sdte devnet up writes its relay there)'

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
      bootstrap: array(string('multiaddr'), 'the bootstrap peers it dialed at start (--bootstrap and the network file\'s)'),
      warnings: array(string('what is wrong and how to fix it'), 'problems of its configuration now, e.g. no bootstrap peer and no peer found'),
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
      bootstrap: [...daemon.bootstrap],
      warnings: daemon.bootstrap.length === 0 && daemon.p2p.peers().length === 0 ? [NO_BOOTSTRAP_WARNING] : [],
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
