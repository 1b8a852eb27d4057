// An attacker for the attack tests: independent libp2p hosts (fresh peer ids, our own code, not a
// daemon) on a LocalTestnet, and funded accounts of its own on the devnet.
import { Wallet } from 'ethers'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createP2PHost, type P2PHost } from '../../p2p/index.ts'
import { ChainClient, fundDevAccount, type NetworkFile } from '../../contracts/index.ts'
import { DEMAND_TOPIC, decodeDemand, type Demand } from '../../p2p/demand/index.ts'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalTestnet, type LocalTestnetOptions } from '../../daemon/tools/testnet.ts'

/** A libp2p host with a fresh peer id, bootstrapped from the testnet's relay (or nothing). */
export async function attackerHost (net: LocalTestnet, o: { bootstrap?: boolean } = {}): Promise<P2PHost> {
  const host = await createP2PHost({ bootstrap: o.bootstrap === false ? [] : [net.relay.info.addresses[0]] }, { privateKey: await generateKeyPair('Ed25519') })
  await host.start()
  return host
}

/** Demands the host sees on the demand topic, decoded (no validation of ours: the attacker listens). */
export function listenForDemands (host: P2PHost, onDemand: (d: Demand) => void): void {
  host.subscribe(DEMAND_TOPIC, (msg) => {
    try { onDemand(decodeDemand(msg.data).demand) } catch {}
  })
}

/** A new account of the attacker's, funded on the devnet, with a chain client that signs as it. */
export async function fundedAccount (network: NetworkFile): Promise<{ wallet: Wallet, chain: ChainClient }> {
  const wallet = Wallet.createRandom() as unknown as Wallet
  await fundDevAccount(network.rpcUrl, wallet.address, 10n ** 20n)
  return { wallet, chain: await ChainClient.connect({ network, signer: wallet.privateKey }) }
}

/** One attack file's testnet and the attacker hosts it starts (push them to `hosts` to have them stopped). */
export interface AttackTestnet { readonly net: LocalTestnet, readonly dir: string, readonly hosts: P2PHost[] }

/**
 * Starts a testnet before the file's tests and stops it, its attacker hosts and its directory after them
 * (SDTE_KEEP_TEST_DIRS keeps the directory). `net` is there once the tests run.
 */
export function attackTestnet (
  suite: { before: (fn: () => Promise<void>) => void, after: (fn: () => Promise<void>) => void },
  name: string,
  options: Omit<LocalTestnetOptions, 'dir'>
): AttackTestnet {
  const dir = mkdtempSync(join(tmpdir(), `sdte-attack-${name}-`))
  const hosts: P2PHost[] = []
  let net: LocalTestnet | undefined
  suite.before(async () => { net = await LocalTestnet.start({ ...options, dir }) })
  suite.after(async () => {
    await Promise.allSettled(hosts.map(async h => { await h.stop() }))
    await net?.stop()
    if (process.env.SDTE_KEEP_TEST_DIRS === undefined) rmSync(dir, { recursive: true, force: true })
  })
  return {
    dir,
    hosts,
    get net (): LocalTestnet {
      if (net === undefined) throw new Error('the attack testnet has not started')
      return net
    }
  }
}
