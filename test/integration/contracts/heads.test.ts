// New heads pushed by the chain node (contracts/heads.ts): a client learns of a block when it is mined,
// without waiting for its eth_blockNumber poll, and goes on learning after the node restarts (the
// socket is opened again). The polls are set 10 minutes apart here, so a block seen came by push.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { startAnvil, ANVIL_DEV_KEY, type AnvilNode } from '../../../contracts/tools/anvil.ts'
import { deploy } from '../../../contracts/tools/deploy.ts'
import { ChainClient } from '../../../contracts/client.ts'
import { headsUrlOf } from '../../../contracts/heads.ts'

const POLL_MS = 600_000
/** Bounded waits (the machine may be loaded): far below POLL_MS, so a block seen within one was pushed. */
const WAIT_MS = 60_000

const dir = mkdtempSync(join(tmpdir(), 'sdte-heads-'))
const state = join(dir, 'anvil-state.json')
let anvil: AnvilNode | undefined
const clients: ChainClient[] = []

test.after(async () => {
  for (const c of clients) c.close()
  await anvil?.stop()
  rmSync(dir, { recursive: true, force: true })
})

/** Waits for `ok`, calling `step` (mining a block) every 250 ms meanwhile; bounded by WAIT_MS. */
async function until (what: string, ok: () => boolean, step?: () => Promise<unknown>): Promise<void> {
  const end = Date.now() + WAIT_MS
  let next = 0
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    if (step !== undefined && Date.now() >= next) {
      next = Date.now() + 250
      await step().catch(() => {})
    }
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

test('the WebSocket address of an RPC address', () => {
  assert.is(headsUrlOf('http://10.0.0.1:8545'), 'ws://10.0.0.1:8545/')
  assert.is(headsUrlOf('https://rpc.example/v1/key'), 'wss://rpc.example/v1/key')
  assert.is(headsUrlOf('ws://h:1'), 'ws://h:1/')
  assert.is(headsUrlOf('ipc:///tmp/x'), null)
  assert.is(headsUrlOf('not a url'), null)
})

test('a block is seen when mined, pushed, and again after the chain node restarts', async () => {
  anvil = await startAnvil({ args: ['--state', state] })
  const port = anvil.port
  const d = await deploy({ rpcUrl: anvil.rpcUrl, signer: ANVIL_DEV_KEY, attestationRoot: Wallet.createRandom().address, measurements: ['0x' + '11'.repeat(32)] })
  const network = { chainId: d.chainId, contracts: d.contracts, rpcUrl: anvil.rpcUrl, devnet: true }
  const pushed = await ChainClient.connect({ network, signer: ANVIL_DEV_KEY, pollingIntervalMs: POLL_MS })
  const polledOnly = await ChainClient.connect({ network, pollingIntervalMs: POLL_MS, pushedHeads: false })
  clients.push(pushed, polledOnly)
  const seen: number[] = []
  const seenPolled: number[] = []
  pushed.onBlock(n => { seen.push(n) })
  polledOnly.onBlock(n => { seenPolled.push(n) })
  // The subscription is open once a mined block comes through (blocks mined before it are not pushed).
  const mine = async (): Promise<unknown> => await polledOnly.provider.send('anvil_mine', ['0x1'])
  await until('the first pushed head', () => seen.length > 0, mine)
  const receipt = await pushed.bdbc.postDemand('0x' + '22'.repeat(32))
  await until('the post\'s block', () => seen.includes(receipt.blockNumber))
  assert.ok(seen.every((n, i) => i === 0 || n > seen[i - 1]), `each number once, rising: ${seen.join(',')}`)
  assert.equal(seenPolled, [], 'without the push, no block within the poll interval')

  await anvil.stop()
  anvil = await startAnvil({ port, args: ['--state', state] })
  const before = seen.at(-1) ?? 0
  await until('a head after the restart', () => (seen.at(-1) ?? 0) > before, mine)
})

test.run()
