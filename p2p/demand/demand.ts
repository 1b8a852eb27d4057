// The buyer's demand (docs/trade.md step 2): what it wants analysed, by how many enclaves, at which
// prices and caps, signed by the buyer's Ethereum key. Only `codeHash` of the algorithm is ever
// public. The demand hash is what the buyer also posts to the BDBC contract.
import { AbiCoder, keccak256, toUtf8Bytes, hexlify, randomBytes } from 'ethers'
import { schema, encodeJsonMessage, decodeJsonMessage, type Infer } from '../messages/index.ts'
import { signDigest, recoverDigest } from '../../contracts/index.ts'
import { MessageSchemaError } from '../errors.ts'
import { SdteError } from '../../config/index.ts'
import { MAX_DEMAND_BYTES, MAX_DEMAND_NODES, MAX_DEMAND_SELLERS, MAX_TRADE_SECONDS } from './constants.ts'

const abi = AbiCoder.defaultAbiCoder()
const { object, literal, number, string, hex, bigintString } = schema

/** keccak256("SDTE.Demand.v2"): domain tag of the buyer's demand signature (v2: the demand declares its epsilon). */
export const DEMAND_TAG = keccak256(toUtf8Bytes('SDTE.Demand.v2'))
/** Dataset tags: what sellers announce in the DHT as sdte:dataset:<tag>. */
export const TAG_PATTERN = /^[A-Za-z0-9._-]{1,64}$/

const wei = bigintString()
export const DemandSchema = object({
  version: literal('2'),
  chainId: number({ min: 1 }),
  dtmc: hex({ bytes: 20 }),
  demandId: hex({ bytes: 32 }),
  buyer: hex({ bytes: 20 }),
  buyerPeer: string({ maxLength: 128, pattern: /^[1-9A-HJ-NP-Za-km-z]{32,128}$/ }),
  tag: string({ maxLength: 64, pattern: TAG_PATTERN }),
  codeHash: hex({ bytes: 32 }),
  nodes: number({ min: 1, max: MAX_DEMAND_NODES }),
  sellers: number({ min: 1, max: MAX_DEMAND_SELLERS }),
  sellerPrice: wei,
  sellerCap: wei,
  nodePrice: wei,
  nodeCap: wei,
  outputPrice: wei,
  outputCap: bigintString({ max: (1n << 64n) - 1n }),
  expiresAt: number({ min: 0 }),
  tradeSeconds: number({ min: 60, max: MAX_TRADE_SECONDS }),
  // Micro-epsilon (1 epsilon = 1,000,000) the trade will be charged on each private dataset; "0" for none.
  epsilon: bigintString({ max: (1n << 64n) - 1n }),
  signature: hex({ bytes: 65 })
})
export type Demand = Infer<typeof DemandSchema>
export type DemandTerms = Omit<Demand, 'version' | 'demandId' | 'buyer' | 'signature'>

/**
 * The ABI words of the demand digest, in order: DEMAND_TAG, chainId, dtmc, demandId, buyer, keccak256(buyerPeer),
 * keccak256(tag), codeHash, nodes, sellers, sellerPrice, sellerCap, nodePrice, nodeCap, outputPrice, outputCap,
 * expiresAt, tradeSeconds, epsilon (docs/protocol.md "The demand", checked against this list by test/unit/docs).
 */
export const DEMAND_DIGEST_TYPES = [
  'bytes32', 'uint256', 'address', 'bytes32', 'address', 'bytes32', 'bytes32', 'bytes32', 'uint8', 'uint8',
  'uint256', 'uint256', 'uint256', 'uint256', 'uint256', 'uint64', 'uint64', 'uint64', 'uint64'
] as const

export function demandHashOf (d: Omit<Demand, 'signature'>): string {
  return keccak256(abi.encode(
    DEMAND_DIGEST_TYPES,
    [DEMAND_TAG, d.chainId, d.dtmc, d.demandId, d.buyer, keccak256(toUtf8Bytes(d.buyerPeer)), keccak256(toUtf8Bytes(d.tag)),
      d.codeHash, d.nodes, d.sellers, d.sellerPrice, d.sellerCap, d.nodePrice, d.nodeCap, d.outputPrice, d.outputCap,
      d.expiresAt, d.tradeSeconds, d.epsilon]
  )).toLowerCase()
}

/** Builds and signs a demand with the buyer's key; without an epsilon, it declares none (0). */
export function signDemand (terms: Omit<DemandTerms, 'epsilon'> & { epsilon?: bigint }, buyer: { address: string, privateKey: string }): Demand {
  const unsigned = { version: '2' as const, ...terms, epsilon: terms.epsilon ?? 0n, demandId: hexlify(randomBytes(32)).toLowerCase(), buyer: buyer.address.toLowerCase() }
  return { ...unsigned, signature: signDigest(buyer.privateKey, demandHashOf(unsigned)) }
}

export type DemandInvalidReason = 'size' | 'schema' | 'signature' | 'network' | 'expired' | 'too-far' | 'duplicate' | 'author' | 'not-posted'

/**
 * The gossip verdict of each reason a demand fails. 'reject' scores the forwarding peer down, so it
 * is kept for what no honest peer forwards: a demand that never was valid. A demand that was valid
 * when an honest peer relayed it but is stale here (expired on the way, a second copy of an id we
 * already have) is 'ignore': dropped, not forwarded, no penalty (as Ethereum's gossip IGNOREs late
 * and already-seen messages).
 */
export const DEMAND_VERDICTS: Readonly<Record<DemandInvalidReason, 'ignore' | 'reject'>> = {
  size: 'reject',
  schema: 'reject',
  signature: 'reject',
  network: 'reject',
  'too-far': 'reject',
  // A demand naming another peer than its gossip author would make every seller and node dial a victim;
  // one its buyer never posted to BDBC cost nobody gas. No honest peer authors either.
  author: 'reject',
  'not-posted': 'reject',
  expired: 'ignore',
  duplicate: 'ignore'
}

export class DemandInvalidError extends SdteError {
  override name = 'DemandInvalidError'
  override code = 'ERR_DEMAND_INVALID'
  readonly reason: DemandInvalidReason
  /** What the gossip validator answers for this demand. */
  readonly verdict: 'ignore' | 'reject'
  constructor (reason: DemandInvalidReason, message: string) {
    super(message)
    this.reason = reason
    this.verdict = DEMAND_VERDICTS[reason]
  }
}

export function encodeDemand (d: Demand): Uint8Array {
  const bytes = encodeJsonMessage(d)
  if (bytes.length > MAX_DEMAND_BYTES) throw new DemandInvalidError('size', `demand of ${bytes.length} bytes over ${MAX_DEMAND_BYTES}`)
  return bytes
}

/** Decodes and checks the form and the signature of a demand (not its freshness: see the validator). */
export function decodeDemand (bytes: Uint8Array): { demand: Demand, demandHash: string } {
  if (bytes.length > MAX_DEMAND_BYTES) throw new DemandInvalidError('size', `demand of ${bytes.length} bytes over ${MAX_DEMAND_BYTES}`)
  let demand: Demand
  try {
    demand = decodeJsonMessage(bytes, DemandSchema)
  } catch (err) {
    throw new DemandInvalidError('schema', err instanceof MessageSchemaError ? err.message : 'not a JSON demand')
  }
  return { demand, demandHash: verifyDemandSignature(demand) }
}

/** Checks that the buyer signed the demand; returns its hash. */
export function verifyDemandSignature (demand: Demand): string {
  const { signature, ...unsigned } = demand
  const demandHash = demandHashOf(unsigned)
  let signer: string
  try {
    signer = recoverDigest(demandHash, signature)
  } catch (err) {
    throw new DemandInvalidError('signature', `bad signature: ${(err as Error).message}`)
  }
  if (signer.toLowerCase() !== demand.buyer) throw new DemandInvalidError('signature', 'signature is not the buyer\'s')
  return demandHash
}
