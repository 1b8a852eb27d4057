// The chain client across reorganisations: a transaction of ours that a reorganisation dropped (its
// block replaced by an empty one, the transaction gone from the pool) is broadcast again, unchanged,
// and takes effect once; one that cannot be (its nonce taken since) fails its send at once, not at the
// receipt timeout; with `confirmations: 2` a send returns only once its block has a successor.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet } from 'ethers'
import { startAnvil, ANVIL_DEV_KEY, type AnvilNode } from '../../../contracts/tools/anvil.ts'
import { deploy } from '../../../contracts/tools/deploy.ts'
import { ChainClient, TransactionDroppedError } from '../../../contracts/client.ts'
import { rpc } from '../../../contracts/devnet-accounts.ts'

const PEER = '12D3KooWKNzdPZvfGdzh5uAjRJh14fZmMybYaoxq8oBnZ297dokY'
const nodes: AnvilNode[] = []
const clients: ChainClient[] = []

test.after(async () => {
  for (const c of clients) c.close()
  await Promise.all(nodes.map(async n => await n.stop()))
})

async function chainWithContracts (blockTime?: number): Promise<{ anvil: AnvilNode, network: { chainId: number, contracts: any, rpcUrl: string, devnet: boolean } }> {
  const anvil = await startAnvil({ blockTime })
  nodes.push(anvil)
  const d = await deploy({ rpcUrl: anvil.rpcUrl, signer: ANVIL_DEV_KEY, attestationRoot: Wallet.createRandom().address, measurements: ['0x' + '11'.repeat(32)] })
  return { anvil, network: { chainId: d.chainId, contracts: d.contracts, rpcUrl: anvil.rpcUrl, devnet: true } }
}

test('a transaction a reorganisation dropped is broadcast again and takes effect once', async () => {
  const { anvil, network } = await chainWithContracts()
  // no timer: the test drives the check itself
  const client = await ChainClient.connect({ network, signer: ANVIL_DEV_KEY, reorgCheckMs: 0 })
  clients.push(client)
  const receipt = await client.cisc.registerSeller(PEER)
  assert.is((await client.cisc.seller(await client.address()))?.peerId, PEER)

  await rpc(anvil.rpcUrl, 'anvil_reorg', [1, []])
  assert.is(await client.provider.getTransactionReceipt(receipt.hash), null, 'the reorganisation dropped it')
  assert.is(await client.cisc.seller(await client.address()), null, 'and what it did')

  assert.is(await client.resubmitDropped(), 1)
  const again = await client.provider.getTransactionReceipt(receipt.hash)
  assert.ok(again !== null && again.status === 1, 'the same transaction is mined again')
  assert.is((await client.cisc.seller(await client.address()))?.peerId, PEER)
  assert.is(await client.resubmitDropped(), 0, 'nothing more to broadcast')

  // the nonce counter is right: the next send is mined after it
  const other = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'
  const next = await client.cisc.registerSeller(other)
  assert.is((await client.provider.getTransaction(next.hash))!.nonce, (await client.provider.getTransaction(receipt.hash))!.nonce + 1)
  assert.is((await client.cisc.seller(await client.address()))?.peerId, other)
})

test('a send whose transaction was dropped and its nonce taken fails at once with TransactionDroppedError', async () => {
  const { anvil, network } = await chainWithContracts()
  // A receipt timeout far longer than the test's wait: the send must end because the transaction was given up.
  const client = await ChainClient.connect({ network, signer: ANVIL_DEV_KEY, reorgCheckMs: 0, receiptTimeoutMs: 600_000, pollingIntervalMs: 50 })
  clients.push(client)
  const from = await client.address()
  await rpc(anvil.rpcUrl, 'evm_setAutomine', [false])
  const sent = client.cisc.registerSeller(PEER).then(() => undefined, (err: unknown) => err)
  const mined = Number(await rpc<string>(anvil.rpcUrl, 'eth_getTransactionCount', [from, 'latest']))
  for (let i = 0; Number(await rpc<string>(anvil.rpcUrl, 'eth_getTransactionCount', [from, 'pending'])) === mined; i++) {
    assert.ok(i < 200, 'the send reached the pool')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  // What a reorganisation to a chain whose block holds another transaction of the account at that nonce leaves:
  // ours neither mined nor pending, its nonce used.
  await rpc(anvil.rpcUrl, 'anvil_dropAllTransactions', [])
  await rpc(anvil.rpcUrl, 'anvil_impersonateAccount', [from])
  await rpc(anvil.rpcUrl, 'eth_sendTransaction', [{ from, to: from, value: '0x0' }])
  await rpc(anvil.rpcUrl, 'anvil_stopImpersonatingAccount', [from])
  await rpc(anvil.rpcUrl, 'evm_mine', [])
  await rpc(anvil.rpcUrl, 'evm_setAutomine', [true])
  assert.is(Number(await rpc<string>(anvil.rpcUrl, 'eth_getTransactionCount', [from, 'latest'])), mined + 1, 'the nonce was taken')

  assert.is(await client.resubmitDropped(), 0, 'it cannot be broadcast again')
  const err = await sent
  assert.ok(err instanceof TransactionDroppedError, `the send failed with TransactionDroppedError, not ${String(err)}`)
  assert.is(await client.cisc.seller(from), null, 'nothing of it is on the chain')
  // the nonce counter was re-read: the next send is mined
  await client.cisc.registerSeller(PEER)
  assert.is((await client.cisc.seller(from))?.peerId, PEER)
})

test('confirmations: 2 returns a send only once its block has a successor', async () => {
  const { network } = await chainWithContracts(1)
  const client = await ChainClient.connect({ network, signer: ANVIL_DEV_KEY, confirmations: 2, pollingIntervalMs: 100 })
  clients.push(client)
  const receipt = await client.cisc.registerSeller(PEER)
  assert.ok(await client.blockNumber() >= receipt.blockNumber + 1, 'one block after the transaction\'s')
  assert.is(await client.confirmedBlock(), await client.blockNumber() - 1)
})

test.run()
