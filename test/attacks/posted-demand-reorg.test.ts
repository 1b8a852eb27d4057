// A demand posted in a block that a reorganisation then dropped (issue 12, review). The daemon's
// posted-demands index (p2p/demand/posted.ts) reads BDBC's DemandPosted logs once a block and
// answers "posted" for any demand it saw there. A buyer that posts a demand, gossips it, and does not
// broadcast its postDemand again after a reorganisation dropped it (an adversary, or a buyer whose
// client lost it) had its demand taken as posted for ever: forwarded and answered by every daemon
// though BDBC never recorded it. Shown on a real anvil (anvil_reorg), the index wired as the daemon
// wires it: a dropped demand must read "not posted" once the index has seen a block after the fork,
// while one whose transaction came back in another block stays "posted".
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet, keccak256, toUtf8Bytes } from 'ethers'
import { startAnvil, ANVIL_DEV_KEY, type AnvilNode } from '../../contracts/tools/anvil.ts'
import { deploy } from '../../contracts/tools/deploy.ts'
import { ChainClient, MAX_REORG_DEPTH } from '../../contracts/client.ts'
import { rpc } from '../../contracts/devnet-accounts.ts'
import { createPostedDemands, type PostedDemands } from '../../p2p/demand/index.ts'
import { waitFor } from '../../daemon/tools/index.ts'

let anvil: AnvilNode
let network: Parameters<typeof ChainClient.connect>[0]['network']
/** Reads the chain for the index and the checks; never sends. */
let reader: ChainClient
const clients: ChainClient[] = []
let posted: PostedDemands

test.before(async () => {
  anvil = await startAnvil()
  const d = await deploy({ rpcUrl: anvil.rpcUrl, signer: ANVIL_DEV_KEY, attestationRoot: Wallet.createRandom().address, measurements: ['0x' + '11'.repeat(32)] })
  network = { chainId: d.chainId, contracts: d.contracts, rpcUrl: anvil.rpcUrl, devnet: true, deployBlock: d.deployBlock }
  reader = await ChainClient.connect({ network })
  // As daemon/daemon.ts wires it.
  posted = createPostedDemands({
    fromBlock: d.deployBlock,
    reorgDepth: MAX_REORG_DEPTH,
    read: async (fromBlock, toBlock) => await reader.bdbc.demands({ fromBlock, toBlock }),
    readOne: async (b, demandHash) => (await reader.bdbc.demands({ buyer: b, demandHash, fromBlock: d.deployBlock }))[0]?.blockNumber ?? null
  })
})

test.after(async () => {
  for (const c of [reader, ...clients]) c?.close()
  await anvil?.stop()
})

/** A buyer's client of its own (its nonce from the chain), with no background rebroadcast: the test decides whether a dropped demand comes back. */
async function buyerClient (): Promise<ChainClient> {
  const c = await ChainClient.connect({ network, signer: ANVIL_DEV_KEY, reorgCheckMs: 0 })
  clients.push(c)
  return c
}

const head = async (): Promise<number> => await reader.blockNumber()
const demandHash = (s: string): string => keccak256(toUtf8Bytes(s))

/** Posts a demand and waits until the index knows it from its scan of the block. */
async function postAndScan (buyer: ChainClient, hash: string): Promise<void> {
  const receipt = await buyer.bdbc.postDemand(hash)
  posted.onBlock(receipt.blockNumber)
  await waitFor('the index to scan the demand\'s block', async () => posted.known() > 0 && (await posted.isPosted(await buyer.address(), hash)) ? true : undefined, 10_000, 20)
}

/** Mines one block and lets the index scan up to it. */
async function nextBlockScanned (): Promise<void> {
  await rpc(anvil.rpcUrl, 'evm_mine', [])
  const n = await head()
  posted.onBlock(n)
  // The scan runs in the background; isPosted waits for one under way, so one call settles it.
  await posted.isPosted('0x' + '00'.repeat(20), demandHash('nothing'))
}

test('a demand whose block a reorganisation dropped is no longer taken as posted', async () => {
  const hash = demandHash('dropped demand')
  const buyer = await buyerClient()
  await postAndScan(buyer, hash)
  await rpc(anvil.rpcUrl, 'anvil_reorg', [1, []])
  assert.equal(await reader.bdbc.demands({ demandHash: hash }), [], 'the reorganisation dropped the demand from BDBC')
  await nextBlockScanned()
  assert.is(await posted.isPosted(await buyer.address(), hash), false, 'the index still answers "posted" for a demand BDBC does not hold')
})

test('a demand whose transaction came back in another block stays posted', async () => {
  const hash = demandHash('re-mined demand')
  const buyer = await buyerClient()
  await postAndScan(buyer, hash)
  await rpc(anvil.rpcUrl, 'anvil_reorg', [1, []])
  assert.is(await buyer.resubmitDropped(), 1, 'the buyer broadcast its postDemand again')
  await nextBlockScanned()
  assert.is((await reader.bdbc.demands({ demandHash: hash })).length, 1, 'on BDBC again')
  assert.is(await posted.isPosted(await buyer.address(), hash), true)
})

test.run()
