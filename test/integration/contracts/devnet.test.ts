// The local testnet as a user runs it: `sdte devnet up` (daemon/cli.ts) from a process that exits, anvil
// surviving it, the network file and key files, joining with the chain client, funding dev accounts,
// `down`; and deployFromKeystore against the same node as if it were a public chain.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Wallet, encryptKeystoreJson, parseEther } from 'ethers'
import { devnetUp, devnetDown, devnetStatus } from '../../../contracts/tools/devnet.ts'
import { fundDevAccount, readKeyFile, rpc } from '../../../contracts/devnet-accounts.ts'
import { deployFromKeystore } from '../../../contracts/tools/deploy.ts'
import { readNetworkFile } from '../../../contracts/network.ts'
import { ChainClient } from '../../../contracts/client.ts'

const run = promisify(execFile)
const root = new URL('../../../', import.meta.url).pathname
const dirs: string[] = []
const tempDir = (): string => { const d = mkdtempSync(join(tmpdir(), 'sdte-devnet-')); dirs.push(d); return d }

test.after(async () => {
  for (const d of dirs) { await devnetDown(d).catch(() => {}); rmSync(d, { recursive: true, force: true }) }
})

const MEASUREMENT = '0x' + 'ab'.repeat(32)

test('devnet up from a command that exits; anvil lives on; network.json, keys; down stops it', async () => {
  const dir = tempDir()
  const { stdout } = await run(process.execPath, ['daemon/cli.ts', 'devnet', 'up', '--dir', dir, '--measurement', MEASUREMENT], { cwd: root })
  assert.match(stdout, /devnet up: chain 31337 at http:\/\/127\.0\.0\.1:\d+/)

  const network = readNetworkFile(join(dir, 'network.json'))
  assert.is(network.devnet, true)
  assert.is(network.chainId, 31337)
  assert.match(network.rpcUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
  assert.equal(network.measurements, [MEASUREMENT])
  // its relay, started beside the chain, is the network's bootstrap peer: a daemon needs only the file
  assert.is(network.bootstrap.length, 1)
  assert.match(network.bootstrap[0], /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3Koo\w+$/)
  assert.ok(network.deployBlock >= 1)
  const raw = JSON.parse(readFileSync(join(dir, 'network.json'), 'utf8'))
  assert.equal(Object.keys(raw).sort(), ['attestationRoot', 'bootstrap', 'chainId', 'contracts', 'deployBlock', 'devnet', 'measurements', 'name', 'rpcUrl'])

  for (const f of ['attestation-root.key', 'deployer.key']) assert.is(statSync(join(dir, f)).mode & 0o777, 0o600, f)
  const rootKey = readKeyFile(join(dir, 'attestation-root.key'))
  assert.is(new Wallet(rootKey).address, network.attestationRoot)
  assert.not.match(readFileSync(join(dir, 'anvil.log'), 'utf8'), rootKey.slice(2))
  assert.not.match(stdout, rootKey.slice(2))

  // the process that started it has exited: anvil still answers
  const status = await devnetStatus(dir)
  assert.is(status.running, true)
  assert.is(status.chainId, 31337)

  // a daemon joins with the network file and funds its own generated account
  const me = Wallet.createRandom()
  assert.is(await fundDevAccount(network.rpcUrl, me.address, parseEther('5')), parseEther('5'))
  assert.is(await fundDevAccount(network.rpcUrl, me.address, parseEther('1')), parseEther('5')) // a top-up never lowers
  const client = await ChainClient.connect({ network, signer: me.privateKey })
  try {
    assert.is(await client.dtmc.attestationRoot(), network.attestationRoot)
    assert.ok(await client.dtmc.isMeasurementAccepted(MEASUREMENT))
    assert.is(await client.dtmc.admin(), new Wallet(readKeyFile(join(dir, 'deployer.key'))).address)
    await client.cisc.registerSeller('12D3KooWdevnet')
    assert.is((await client.cisc.seller(me.address))!.peerId, '12D3KooWdevnet')
  } finally {
    client.close()
  }

  // a second up on a running devnet is refused: from the command line, one line naming the fix (exit 1)
  try {
    await devnetUp({ dir })
    assert.unreachable()
  } catch (err) {
    assert.match((err as Error).message, /already running/)
  }
  const again = await run(process.execPath, ['daemon/cli.ts', 'devnet', 'up', '--dir', dir], { cwd: root }).then(() => undefined, (err: { code: number, stderr: string }) => err)
  assert.ok(again !== undefined, 'a second devnet up succeeded')
  assert.is(again.code, 1)
  assert.match(again.stderr, /^sdte: a devnet is already running in .*; stop it first with: sdte devnet down --dir .*\n$/)
  const { stdout: statusJson } = await run(process.execPath, ['daemon/cli.ts', 'devnet', 'status', '--dir', dir, '--json'], { cwd: root })
  assert.is(JSON.parse(statusJson).running, true)
  assert.ok(Number.isInteger(JSON.parse(statusJson).relayPid), 'the relay runs')
  const relayPid = JSON.parse(statusJson).relayPid as number

  const { stdout: down } = await run(process.execPath, ['daemon/cli.ts', 'devnet', 'down', '--dir', dir], { cwd: root })
  assert.match(down, /devnet stopped/)
  assert.is((await devnetStatus(dir)).running, false)
  // `devnet status` fails (exit 1) when nothing runs
  const stopped = await run(process.execPath, ['daemon/cli.ts', 'devnet', 'status', '--dir', dir], { cwd: root }).then(() => undefined, (err: { code: number, stderr: string }) => err)
  assert.is(stopped?.code, 1)
  assert.match(stopped?.stderr ?? '', /no devnet running in .*start one with: sdte devnet up/)
  assert.not.ok(existsSync(join(dir, 'anvil.pid')))
  assert.throws(() => process.kill(relayPid, 0), 'the relay was stopped too')
  await rpc(network.rpcUrl, 'eth_chainId', [], 500).then(() => assert.unreachable('anvil still answers'), () => {})
  assert.is(await devnetDown(dir), false)
})

test('sdte devnet up refuses a bad --block-time or --measurement before starting anything', async () => {
  for (const [flag, value, message] of [['--block-time', '0', /--block-time must be a whole number of seconds/], ['--measurement', '0x12', /measurement 0x12 is not a 0x bytes32/]] as const) {
    const dir = join(tempDir(), 'net')
    const failed = await run(process.execPath, ['daemon/cli.ts', 'devnet', 'up', '--dir', dir, flag, value], { cwd: root }).then(() => undefined, (err: { code: number, stderr: string }) => err)
    assert.ok(failed !== undefined, `${flag} ${value} was accepted`)
    assert.match(failed.stderr, message)
    assert.not.ok(existsSync(dir), 'the devnet directory was made')
  }
})

test('deployFromKeystore writes the same network file shape, devnet false (on a chain that mines every second)', async () => {
  const dir = tempDir()
  // blocks every second, like a public chain: deployments wait for receipts instead of automining
  const dev = await devnetUp({ dir, measurements: [MEASUREMENT], blockTime: 1 })
  // another devnet on the same port is refused before anything starts
  const port = Number(new URL(dev.rpcUrl).port)
  const other = tempDir()
  await devnetUp({ dir: other, port }).then(() => assert.unreachable(), (err: Error) => assert.match(err.message, /port \d+ on 127\.0\.0\.1 is in use/))
  assert.not.ok(existsSync(join(other, 'anvil.pid')))

  const wallet = Wallet.createRandom()
  await fundDevAccount(dev.rpcUrl, wallet.address, parseEther('10'))
  const keystore = join(dir, 'keystore.json')
  writeFileSync(keystore, await encryptKeystoreJson({ address: wallet.address, privateKey: wallet.privateKey }, 'correct horse', { scrypt: { N: 1024 } }))
  try {
    await deployFromKeystore({ rpcUrl: dev.rpcUrl, keystorePath: keystore, password: 'wrong', attestationRoot: dev.attestationRoot, measurements: [], out: join(dir, 'x.json') })
    assert.unreachable()
  } catch (err) {
    assert.match((err as Error).message, /cannot open keystore/)
  }
  const out = join(dir, 'public.json')
  const net = await deployFromKeystore({ rpcUrl: dev.rpcUrl, keystorePath: keystore, password: 'correct horse', attestationRoot: dev.attestationRoot, measurements: [MEASUREMENT], out, name: 'testnet' })
  assert.equal(readNetworkFile(out), net)
  assert.is(net.devnet, false)
  assert.is(net.name, 'testnet')
  assert.is.not(net.contracts.DTMC, dev.contracts.DTMC)
  const client = await ChainClient.connect({ network: net })
  try {
    assert.is(await client.dtmc.admin(), wallet.address)
    assert.ok(await client.dtmc.isMeasurementAccepted(MEASUREMENT))
  } finally {
    client.close()
  }
  await devnetDown(dir)
})

test.run()
