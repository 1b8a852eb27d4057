// An attacker for the attack tests: independent libp2p hosts (fresh peer ids, our own code, not a
// daemon) on a LocalTestnet, and funded accounts of its own on the devnet.
import { Wallet, getBytes, hexlify, keccak256, randomBytes } from 'ethers'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { attestProtocol, createP2PHost, dataProtocol, type P2PHost } from '../../p2p/index.ts'
import type { RequestRefusedError } from '../../p2p/messages/exchange.ts'
import { ChainClient, fundDevAccount, networkDomainOf, readKeyFile, tagHashOf, type NetworkFile, type TradeView } from '../../contracts/index.ts'
import {
  encryptCodeForEnclave, encryptDataset, generateKeyPair as generateResultKeyPair, signChunk, signCodeDelivery, signDataKeyDelivery, signReceiptAck, wrapDataKey
} from '../../enclave/index.ts'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { DEMAND_TOPIC, decodeDemand, type Demand } from '../../p2p/demand/index.ts'
import { mkdtempSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { createEnclave, type EnclaveHost } from '../../enclave/index.ts'
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

/**
 * A real enclave of the attacker's (this build, in this process): the testnet's simulated attestation root signs its
 * quotes, which name `operator`, the attacker's node account. It stands for a node with a genuine enclave behind a
 * host of its own, which does with the enclave's answers what it likes. Close it after use.
 */
export async function attackerEnclave (net: LocalTestnet, operator: string): Promise<EnclaveHost> {
  return await createEnclave({
    attestationKey: readKeyFile(join(dirname(net.networkPath), 'attestation-root.key')),
    domain: networkDomainOf(net.network),
    operator,
    platformSecret: randomBytes(32)
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

/** analyze(bytes[]) returning abi.encode(bytes(uint256(gasleft()))): cheap to run, and it reads the gas cap it ran with. */
export const GASLEFT_CODE = getBytes('0x602060005260206020525a60405260606000f3')
/** A dataset of two rows for the attacker's own trades. */
export const TINY_DATA = new TextEncoder().encode('x,y\n1,2\n3,4\n')

/**
 * A buyer and a seller of the attacker's own against one node daemon: a libp2p host connected to the node, two funded
 * accounts, the seller registered for the host's peer with one dataset listed under `tag` (any code, `outputCap`).
 */
export async function nodeTradeAttacker (bench: AttackTestnet, o: { tag: string, data: Uint8Array, outputCap: bigint }) {
  const net = bench.net
  const node = net.nodes[0]
  const host = await attackerHost(net)
  bench.hosts.push(host)
  await waitFor('a connection to the node', async () => await host.connect(node.info.addresses[0]).then(() => true, () => false), 30_000, 500)
  const buyer = await fundedAccount(net.network)
  const seller = await fundedAccount(net.network)
  await seller.chain.cisc.registerSeller(host.peerId)
  const ds = encryptDataset(o.data)
  const { offerId } = await seller.chain.cisc.listDataset({
    tag: o.tag, size: BigInt(o.data.length), unitPrice: 1n, commitment: ds.commitment,
    policy: { allowedCodeHashes: [], anyCode: true, outputCap: o.outputCap, minOutputPrice: 0n }
  })
  return {
    node, buyer, seller, ds, offerId, tag: o.tag, dataSize: o.data.length,
    attest: attestProtocol(host), data: dataProtocol(host), domain: networkDomainOf(net.network),
    close: (): void => { buyer.chain.close(); seller.chain.close() }
  }
}
export type NodeTradeAttacker = Awaited<ReturnType<typeof nodeTradeAttacker>>

/** The trade's terms the attacker opens on DTMC, and the output cap its code envelope carries. */
export interface AttackerTradeTerms {
  code: Uint8Array, nodePrice: bigint, nodeCap: bigint, gasCap: bigint, outputCap: bigint, envelopeOutputCap?: bigint
  /** The buyer's code envelope is not sent: the node takes the data and the ack but cannot run (nor commit). */
  withholdCode?: boolean
  /** What the attacker does once it holds the node's receipt, before it sends its ack (a decline on DTMC, say). */
  beforeAck?: (tradeId: string) => Promise<void>
}

/**
 * The attacker's trade on the node: a quote from its enclave, the trade opened on DTMC with `terms`, the buyer's code
 * envelope (with `envelopeOutputCap`, default the trade's), then the seller's delivery over /sdte/data/2 with its data
 * key carrying the trade's output cap, the receipt acknowledged on the delivery's own stream as the seller daemon does.
 * Returns the delivery's outcome: 'complete', or the node's refusal.
 */
export async function attackerTrade (a: NodeTradeAttacker, terms: AttackerTradeTerms): Promise<{ tradeId: string, outcome: string, view: TradeView }> {
  const random32 = (): string => hexlify(randomBytes(32)).toLowerCase()
  const salt = random32()
  const tradeId = a.buyer.chain.dtmc.tradeIdOf(a.buyer.wallet.address, salt)
  const codeHash = keccak256(terms.code).toLowerCase()
  const reply = await a.attest.attest(a.node.info.peerId, { tradeId, codeHash, nonce: random32() })
  const taskId = reply.quote.taskId
  const now = (await a.buyer.chain.provider.getBlock('latest'))!.timestamp
  await a.buyer.chain.dtmc.openTrade({
    salt, tagHash: tagHashOf(a.tag), codeHash, deadline: now + 600, sellerCap: BigInt(a.dataSize), nodePrice: terms.nodePrice, nodeCap: terms.nodeCap,
    outputPrice: 1n, outputCap: terms.outputCap, gasCap: terms.gasCap, offerIds: [a.offerId], nodes: [{ payee: a.node.info.ethAddress, quote: reply.quote }]
  })
  const view = await a.buyer.chain.dtmc.trade(tradeId)
  if (view === null) throw new Error('the attacker\'s trade is not on DTMC')
  const envelope = encryptCodeForEnclave(reply.enclavePublicKey, taskId, {
    code: terms.code, resultPublicKey: generateResultKeyPair().publicKey, gasCap: terms.gasCap, outputCap: terms.envelopeOutputCap ?? terms.outputCap, resultSalt: random32()
  })
  if (terms.withholdCode !== true) await a.attest.sendCode(a.node.info.peerId, { taskId, envelope: hexlify(envelope), salt, signature: signCodeDelivery(a.buyer.wallet.privateKey, a.domain, taskId, envelope) })
  const sellerKey = a.seller.wallet.privateKey
  const wrapped = wrapDataKey(reply.enclavePublicKey, taskId, 0, { key: a.ds.key, commitment: a.ds.commitment, commitmentSalt: a.ds.commitmentSalt, size: a.ds.size, outputCap: terms.outputCap })
  const open = {
    tradeId, taskId, sellerIndex: 0, commitment: a.ds.commitment, wrappedKey: hexlify(wrapped),
    sellerSignature: signDataKeyDelivery(sellerKey, a.domain, taskId, 0, a.ds.commitment, wrapped), size: a.ds.size, chunks: a.ds.chunks.length
  }
  const chunkAt = (i: number): Uint8Array => signChunk(sellerKey, a.domain, taskId, 0, wrapped, a.ds.chunks[i])
  const acknowledge = async (): Promise<string> => {
    await terms.beforeAck?.(tradeId)
    return signReceiptAck(sellerKey, a.domain, { tradeId, taskId, sellerIndex: 0, commitment: a.ds.commitment, seller: a.seller.wallet.address.toLowerCase() })
  }
  let outcome: string
  try {
    const status = await a.data.deliver(a.node.info.peerId, open, chunkAt, { acknowledge })
    outcome = status.complete && status.acked === true ? 'complete' : status.complete ? 'complete, not acknowledged' : `incomplete at chunk ${status.nextChunk}`
  } catch (err) {
    outcome = (err as RequestRefusedError).reason ?? String(err)
  }
  return { tradeId, outcome, view }
}
