// The buyer's signature on a result request or ack (docs/protocol.md step 10): only the trade's
// buyer, as DTMC records it, may fetch a result or tell a node it may drop it. The digest binds the
// network (chain id, DTMC), the trade and the node's task, and a timestamp that bounds replays.
// Only the node and the buyer use it (not the enclave or DTMC), so it lives here, not in contracts/formats.ts.
import { AbiCoder, keccak256, toUtf8Bytes } from 'ethers'
import { recoverDigest, signDigest } from '../../contracts/index.ts'
import { MAX_REQUEST_SKEW_SECONDS } from './constants.ts'
import type { ResultAck, ResultRequest } from './schema.ts'

const abi = AbiCoder.defaultAbiCoder()

/** keccak256("SDTE.ResultRequest.v1"): domain tag of the buyer's request for a result. */
export const RESULT_REQUEST_TAG = keccak256(toUtf8Bytes('SDTE.ResultRequest.v1'))
/** keccak256("SDTE.ResultAck.v1"): domain tag of the buyer's acknowledgement that it has the result. */
export const RESULT_ACK_TAG = keccak256(toUtf8Bytes('SDTE.ResultAck.v1'))

/** Which network a signature is for: a request signed for one chain or DTMC is void on another. */
export interface ResultDomain { chainId: number, dtmc: string }

export type ResultMessage = ResultRequest | ResultAck
export interface UnsignedResultMessage { type: ResultMessage['type'], tradeId: string, taskId: string, timestamp: number }

export class ResultRequestInvalidError extends Error {
  override name = 'ResultRequestInvalidError'
  readonly code = 'ERR_RESULT_REQUEST_INVALID'
  readonly reason: 'signature' | 'stale'
  constructor (reason: ResultRequestInvalidError['reason'], message: string) {
    super(message)
    this.reason = reason
  }
}

/**
 * digest = keccak256(abi.encode(bytes32 tag, uint256 chainId, address dtmc, bytes32 tradeId,
 * bytes32 taskId, uint64 timestamp)), tag RESULT_REQUEST_TAG or RESULT_ACK_TAG by the message type.
 */
export function resultMessageDigestOf (m: UnsignedResultMessage, domain: ResultDomain): string {
  const tag = m.type === 'result-ack' ? RESULT_ACK_TAG : RESULT_REQUEST_TAG
  return keccak256(abi.encode(
    ['bytes32', 'uint256', 'address', 'bytes32', 'bytes32', 'uint64'],
    [tag, domain.chainId, domain.dtmc, m.tradeId, m.taskId, m.timestamp]
  )).toLowerCase()
}

/** A request (or ack) for one node's task of a trade, signed now with the buyer's key. */
export function signResultMessage<T extends 'result-request' | 'result-ack'> (
  type: T, fields: { tradeId: string, taskId: string }, domain: ResultDomain, buyerPrivateKey: string, now = Date.now()
): Extract<ResultMessage, { type: T }> {
  const unsigned = { type, tradeId: fields.tradeId.toLowerCase(), taskId: fields.taskId.toLowerCase(), timestamp: Math.floor(now / 1000) }
  return { ...unsigned, signature: signDigest(buyerPrivateKey, resultMessageDigestOf(unsigned, domain)) } as Extract<ResultMessage, { type: T }>
}

/**
 * The address that signed a request or ack, once its timestamp is within MAX_REQUEST_SKEW_SECONDS
 * of `now`. Throws ResultRequestInvalidError; the caller compares the signer with DTMC's buyer.
 */
export function resultMessageSigner (m: ResultMessage, domain: ResultDomain, now = Date.now()): string {
  const skew = Math.abs(Math.floor(now / 1000) - m.timestamp)
  if (skew > MAX_REQUEST_SKEW_SECONDS) {
    throw new ResultRequestInvalidError('stale', `timestamp ${m.timestamp} is ${skew} s from this node's clock (at most ${MAX_REQUEST_SKEW_SECONDS})`)
  }
  const { signature, ...unsigned } = m
  try {
    return recoverDigest(resultMessageDigestOf(unsigned, domain), signature).toLowerCase()
  } catch (err) {
    throw new ResultRequestInvalidError('signature', `bad signature: ${(err as Error).message}`)
  }
}
