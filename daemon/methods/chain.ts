// The chain_* and cisc_* namespaces: balances, and the CISC records buyers filter by.
import type { ChainClient } from '../../contracts/index.ts'
import type { RpcServer } from '../rpc/server.ts'
import { appError } from '../rpc/errors.ts'
import { object, array, string, integer, number, nullable, address, bytes32, decimal } from '../rpc/results.ts'

export const MAX_FEEDBACK_RETURNED = 100

export function registerChainMethods (rpc: RpcServer, chain: ChainClient, ownAddress: string): void {
  rpc.register({
    name: 'chain_balance',
    readOnly: true,
    summary: 'Ether balance of an account (default this daemon\'s), and what DTMC holds for it to withdraw.',
    params: [{ name: 'address', type: 'address', required: false, description: 'default: this daemon\'s account' }],
    result: object({ address: address(), wei: decimal('balance in wei'), credit: decimal('wei DTMC holds for it to withdraw') }),
    errors: ['ChainUnavailable'],
    handler: async (p) => {
      const address = p.address ?? ownAddress
      // An unreachable chain is a ChainUnavailableError (RPC_ERROR_TABLE: ChainUnavailable).
      const [wei, credit] = await Promise.all([chain.balance(address), chain.dtmc.creditOf(address)])
      return { address, wei: wei.toString(), credit: credit.toString() }
    }
  })

  rpc.register({
    name: 'cisc_seller',
    readOnly: true,
    summary: "A seller's CISC record: peer id, ratings, and past result info (never a result).",
    params: [{ name: 'address', type: 'address', description: "the seller's account" }],
    result: object({
      address: address(),
      peerId: string(),
      registeredAt: integer('unix seconds'),
      ratingCount: integer(),
      ratingSum: integer(),
      ratingAverage: nullable(number('1..5')),
      feedback: array(object({
        tradeId: bytes32(),
        resultHash: bytes32('the final result hash of the trade (never the result)'),
        resultSize: decimal('bytes'),
        score: integer('1..5'),
        status: integer('the result status (contracts/formats.ts)'),
        ratedAt: integer('unix seconds')
      }, { description: 'a rating with its trade\'s result info' }), `the last ${MAX_FEEDBACK_RETURNED}`)
    }),
    errors: ['NotFound'],
    handler: async (p) => {
      const s = await chain.cisc.seller(p.address)
      if (s === null) throw appError('NotFound', `${p.address} is not a registered seller`)
      const count = await chain.cisc.feedbackCount(p.address)
      const feedback = await chain.cisc.feedback(p.address, Math.max(0, count - MAX_FEEDBACK_RETURNED), MAX_FEEDBACK_RETURNED)
      return { ...s, ratingAverage: s.ratingCount === 0 ? null : s.ratingSum / s.ratingCount, feedback }
    }
  })

  rpc.register({
    name: 'cisc_node',
    readOnly: true,
    summary: "A trusted node's CISC record: peer id, enclave measurement, prices.",
    params: [{ name: 'address', type: 'address', description: "the node's account" }],
    result: object({ address: address(), peerId: string(), measurement: bytes32(), pricePerGas: decimal(), maxGas: decimal(), registeredAt: integer('unix seconds') }),
    errors: ['NotFound'],
    handler: async (p) => {
      const n = await chain.cisc.node(p.address)
      if (n === null) throw appError('NotFound', `${p.address} is not a registered node`)
      return n
    }
  })
}
