// New heads pushed by the chain node (contracts/heads.ts): a client learns of a block when it is mined,
// without waiting for its eth_blockNumber poll, and goes on learning after the node restarts (the
// socket is opened again). The polls are set 10 minutes apart here, so a block seen came by push.
// And while the heads come pushed the client polls for blocks only now and then (PUSHED_HEADS_POLL_MS),
// polling fast again while the socket is down: counted by a proxy in front of anvil that passes HTTP
// and can cut the WebSocket alone (a provider whose WebSocket fails while its HTTP answers).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import { spawn } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { startAnvil, ANVIL_DEV_KEY, type AnvilNode } from '../../../contracts/tools/anvil.ts'
import { deploy } from '../../../contracts/tools/deploy.ts'
import { ChainClient } from '../../../contracts/client.ts'
import { headsUrlOf, subscribeHeads, PUSHED_HEADS_POLL_MS, type HeadSubscription } from '../../../contracts/heads.ts'

const POLL_MS = 600_000
/** Bounded waits (the machine may be loaded): far below POLL_MS, so a block seen within one was pushed. */
const WAIT_MS = 60_000

const dir = mkdtempSync(join(tmpdir(), 'sdte-heads-'))
const state = join(dir, 'anvil-state.json')
let anvil: AnvilNode | undefined
const clients: ChainClient[] = []
let network: { chainId: number, contracts: { CISC: string, BDBC: string, DTMC: string }, rpcUrl: string, devnet: boolean } | undefined
let proxy: Server | undefined
let direct: HeadSubscription | undefined

test.after(async () => {
  direct?.stop()
  for (const c of clients) c.close()
  proxy?.closeAllConnections()
  proxy?.close()
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
  network = { chainId: d.chainId, contracts: d.contracts, rpcUrl: anvil.rpcUrl, devnet: true }
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
  // Posted by a client of the default polling: a client waits for its receipt by polling at its own interval (10
  // minutes for these two), so a receipt not readable at the first look left the post waiting past the file's 5 min
  // limit (a fresh-clone CI, once). The pushed client must still see the post's block by push.
  const poster = await ChainClient.connect({ network, signer: ANVIL_DEV_KEY, pushedHeads: false })
  clients.push(poster)
  const receipt = await poster.bdbc.postDemand('0x' + '22'.repeat(32))
  await until('the post\'s block', () => seen.includes(receipt.blockNumber))
  assert.ok(seen.every((n, i) => i === 0 || n > seen[i - 1]), `each number once, rising: ${seen.join(',')}`)
  assert.equal(seenPolled, [], 'without the push, no block within the poll interval')

  await anvil.stop()
  anvil = await startAnvil({ port, args: ['--state', state] })
  const before = seen.at(-1) ?? 0
  await until('a head after the restart', () => (seen.at(-1) ?? 0) > before, mine)
})

/**
 * An HTTP proxy in front of the anvil now running: passes JSON-RPC over HTTP, counting the eth_blockNumber
 * calls (batched or not, at the time each arrived), and WebSocket upgrades, which `cut` ends and refuses.
 */
async function rpcProxy (): Promise<{ url: string, blockNumberCalls: number[], upgrades: () => number, cut: () => void, allow: () => void }> {
  const blockNumberCalls: number[] = []
  const sockets = new Set<Socket>()
  let upgrades = 0
  let open = true
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      try {
        const parsed: unknown = JSON.parse(body.toString())
        for (const call of Array.isArray(parsed) ? parsed : [parsed]) {
          if ((call as { method?: string }).method === 'eth_blockNumber') blockNumberCalls.push(Date.now())
        }
      } catch {}
      fetch(anvil!.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        .then(async r => { res.writeHead(r.status, { 'content-type': 'application/json' }); res.end(Buffer.from(await r.arrayBuffer())) })
        .catch(() => { res.writeHead(502); res.end() })
    })
  })
  server.on('upgrade', (req, client: Socket, head: Buffer) => {
    if (!open) { client.destroy(); return }
    upgrades++
    const upstream = connect(anvil!.port, '127.0.0.1', () => {
      const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`]
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`)
      upstream.write(lines.join('\r\n') + '\r\n\r\n')
      upstream.write(head)
      client.pipe(upstream).pipe(client)
    })
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => { sockets.delete(s); client.destroy(); upstream.destroy() })
    }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  proxy = server
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    blockNumberCalls,
    upgrades: () => upgrades,
    cut: () => { open = false; for (const s of sockets) s.destroy() },
    allow: () => { open = true }
  }
}

test('while heads come pushed, blocks are polled for only now and then; while the socket is down, fast again', async () => {
  assert.ok(anvil !== undefined && network !== undefined, 'the chain of the test before')
  const p = await rpcProxy()
  const miner = await ChainClient.connect({ network, pushedHeads: false, skipChecks: true })
  // Polls every 100 ms (a devnet's default) unless the heads come pushed.
  const client = await ChainClient.connect({ network, rpcUrl: p.url, pollingIntervalMs: 100, skipChecks: true })
  clients.push(miner, client)
  const states: string[] = []
  direct = subscribeHeads(headsUrlOf(p.url) ?? '', () => {}, { onState: (s) => { states.push(s) } })
  const seen: number[] = []
  client.onBlock(n => { seen.push(n) })
  const mineOne = async (): Promise<void> => {
    const before = await miner.blockNumber()
    await miner.provider.send('anvil_mine', ['0x1'])
    await until(`block ${before + 1}`, () => seen.includes(before + 1))
  }
  const callsSince = (t: number): number => p.blockNumberCalls.filter(x => x >= t).length
  /** Mines three blocks, each seen, over at least `ms`; the eth_blockNumber calls meanwhile and how long it took. */
  const window = async (ms: number): Promise<{ calls: number, elapsed: number }> => {
    const from = Date.now()
    for (let i = 0; i < 3; i++) await mineOne()
    await until('the window\'s end', () => Date.now() - from >= ms)
    return { calls: callsSince(from), elapsed: Date.now() - from }
  }
  /** At most this many polls in `elapsed` ms at PUSHED_HEADS_POLL_MS, and the fast one still due when the heads came up. */
  const slowBound = (elapsed: number): number => 2 + Math.ceil(elapsed / PUSHED_HEADS_POLL_MS)

  // Up: the subscription (both: the client's and the direct one) said so; a block mined now comes pushed.
  await until('the heads up', () => p.upgrades() >= 2 && states.includes('up'))
  await mineOne()
  const up = await window(2000)
  assert.ok(up.calls <= slowBound(up.elapsed), `pushed heads up: ${up.calls} eth_blockNumber in ${up.elapsed} ms, at most ${slowBound(up.elapsed)}`)

  // Down: the WebSocket is cut and refused, HTTP answers: the client polls fast again and blocks still come.
  p.cut()
  const cutAt = Date.now()
  await until('the heads down', () => states.includes('down'))
  // Ten polls take at least 9 * PUSHED_HEADS_POLL_MS slow: sooner means polling resumed at its fast pace.
  await until('ten polls after the cut', () => callsSince(cutAt) >= 10)
  assert.ok(Date.now() - cutAt < 9 * PUSHED_HEADS_POLL_MS, `ten polls ${Date.now() - cutAt} ms after the cut`)
  const down = await window(1000)
  assert.ok(down.calls > slowBound(down.elapsed), `pushed heads down: ${down.calls} eth_blockNumber in ${down.elapsed} ms`)

  // Up again: the socket is let through, opened again (after its back-off), and the polling slows again.
  const upgradesBefore = p.upgrades()
  p.allow()
  await until('the heads up again', () => p.upgrades() >= upgradesBefore + 2 && states.at(-1) === 'up')
  await mineOne()
  const again = await window(2000)
  assert.ok(again.calls <= slowBound(again.elapsed), `pushed heads up again: ${again.calls} eth_blockNumber in ${again.elapsed} ms`)
  assert.equal(states, ['up', 'down', 'up'])
  assert.ok(seen.every((n, i) => i === 0 || n > seen[i - 1]), `each number once, rising: ${seen.join(',')}`)
})

test('a client closed at once after onBlock leaves no block poll behind (its process exits)', async () => {
  assert.ok(anvil !== undefined && network !== undefined, 'the chain of the test before')
  // ethers would start its poll on the destroyed provider, failing and scheduled again forever: a live timer.
  const client = new URL('../../../contracts/client.ts', import.meta.url).pathname
  const script = `import { ChainClient } from ${JSON.stringify(client)}
const c = await ChainClient.connect({ network: ${JSON.stringify(network)}, skipChecks: true })
c.onBlock(() => {})
c.close()`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(null) }, WAIT_MS)
    child.on('exit', (c) => { clearTimeout(timer); resolve(c) })
  })
  assert.is(code, 0, code === null ? `still running ${WAIT_MS} ms after close()` : stderr)
})

test.run()
