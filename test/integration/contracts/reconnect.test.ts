// The chain client across a chain node restart: while the node is down a call fails with a clear
// error; once it is back (same port, its state kept by anvil's --state file), the same client goes
// on, reads and sends, without being rebuilt and without a nonce collision.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { startAnvil, ANVIL_DEV_KEY, type AnvilNode } from '../../../contracts/tools/anvil.ts'
import { deploy } from '../../../contracts/tools/deploy.ts'
import { ChainClient } from '../../../contracts/client.ts'

const dir = mkdtempSync(join(tmpdir(), 'sdte-reconnect-'))
const state = join(dir, 'anvil-state.json')
let anvil: AnvilNode | undefined
let client: ChainClient | undefined

test.after(async () => {
  client?.close()
  await anvil?.stop()
  rmSync(dir, { recursive: true, force: true })
})

test('a client survives its chain node restarting', async () => {
  anvil = await startAnvil({ args: ['--state', state] })
  const port = anvil.port
  const root = Wallet.createRandom().address
  const d = await deploy({ rpcUrl: anvil.rpcUrl, signer: ANVIL_DEV_KEY, attestationRoot: root, measurements: ['0x' + '11'.repeat(32)] })
  client = await ChainClient.connect({ network: { chainId: d.chainId, contracts: d.contracts, rpcUrl: anvil.rpcUrl, devnet: true }, signer: ANVIL_DEV_KEY })
  await client.cisc.registerSeller('12D3KooWKNzdPZvfGdzh5uAjRJh14fZmMybYaoxq8oBnZ297dokY')

  await anvil.stop()
  anvil = undefined
  let failure: Error | undefined
  try {
    await client.cisc.seller(await client.address())
  } catch (err) {
    failure = err as Error
  }
  assert.ok(failure !== undefined, 'a call to a stopped node fails')

  anvil = await startAnvil({ port, args: ['--state', state] })
  const again = await client.cisc.seller(await client.address())
  assert.is(again?.peerId, '12D3KooWKNzdPZvfGdzh5uAjRJh14fZmMybYaoxq8oBnZ297dokY', 'state kept, read through the same client')
  await client.cisc.registerSeller('12D3KooWNC161G6vDx8PzVEhq1CKXZMULgZFxoXnjs2hrp5sR3jT')
  assert.is((await client.cisc.seller(await client.address()))?.peerId, '12D3KooWNC161G6vDx8PzVEhq1CKXZMULgZFxoXnjs2hrp5sR3jT', 'and sends')
})

test.run()
