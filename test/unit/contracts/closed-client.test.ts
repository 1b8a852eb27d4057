// After ChainClient.close() nothing of its block watch may start (a review found two ways it still did):
// ethers' block poll started by an onBlock whose start was under way when close() came (ethers' on() awaits
// before it starts the poller, so a poller started on the destroyed provider, its timer alive for ever:
// the process did not exit), and the heads WebSocket opened by an onBlock called after close().
// The "chain" is a local HTTP server that answers nothing useful and counts WebSocket upgrades; the client
// is connected with skipChecks, so it sends nothing before onBlock.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, type Server } from 'node:http'
import { ChainClient } from '../../../contracts/client.ts'

let server: Server | undefined
let upgrades = 0
let rpcUrl = ''

test.before(async () => {
  server = createServer((_req, res) => { res.writeHead(500).end() })
  server.on('upgrade', (_req, socket) => { upgrades++; socket.destroy() })
  await new Promise<void>((resolve) => { server!.listen(0, '127.0.0.1', resolve) })
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('no port')
  rpcUrl = `http://127.0.0.1:${addr.port}`
})

test.after(async () => {
  server?.closeAllConnections()
  await new Promise<void>((resolve) => { server?.close(() => { resolve() }) })
})

const network = {
  chainId: 31337,
  contracts: { CISC: '0x' + '01'.repeat(20), BDBC: '0x' + '02'.repeat(20), DTMC: '0x' + '03'.repeat(20) }
}

async function connect (): Promise<ChainClient> {
  return await ChainClient.connect({ network: { ...network, rpcUrl }, skipChecks: true, pollingIntervalMs: 60_000 })
}

/** The block subscribers the provider holds (ethers keeps one per event it polls for). */
function subscribers (c: ChainClient): number {
  let n = 0
  c.provider._forEachSubscriber(() => { n++ })
  return n
}

/** Lets every pending promise chain settle (the client's poll changes are a few microtasks and no I/O). */
async function settle (): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve))
}

/** Live timers of this process (a poller's next poll is one; ethers keeps none for a paused provider). */
function timers (): number {
  return process.getActiveResourcesInfo().filter(r => r === 'Timeout').length
}

test('close() at any point of onBlock\'s start leaves no block poller on the destroyed provider', async () => {
  // The start spans some microtasks; close() is tried after each count of them, covering every point in it.
  // A poller ethers started after its destroy() is not among its subscribers any more: its timer shows it.
  const baseline = timers()
  for (let ticks = 0; ticks < 30; ticks++) {
    const c = await connect()
    c.onBlock(() => {})
    for (let i = 0; i < ticks; i++) await Promise.resolve()
    c.close()
    await settle()
    assert.is(subscribers(c), 0, `a block poller left running when close() came ${ticks} microtasks after onBlock`)
    // A request sent before close() holds a timer until it is answered (at once here): wait for it, bounded
    // far below the poll's 60 s interval, so a timer still there is the poller's.
    for (let i = 0; i < 500 && timers() > baseline; i++) await new Promise(resolve => setTimeout(resolve, 10))
    assert.is(timers(), baseline, `a timer left running when close() came ${ticks} microtasks after onBlock`)
  }
})

test('onBlock after close() is a no-op: no heads WebSocket, no block poll, and its unsubscribe is harmless', async () => {
  const c = await connect()
  c.close()
  const before = upgrades
  const unsubscribe = c.onBlock(() => {})
  await settle()
  // The socket would be opened at once by subscribeHeads; give its upgrade request time to arrive (bounded).
  for (let i = 0; i < 50 && upgrades === before; i++) await new Promise(resolve => setTimeout(resolve, 10))
  assert.is(upgrades, before, 'a heads WebSocket opened after close()')
  assert.is(subscribers(c), 0, 'a block poller started after close()')
  unsubscribe()
  await settle()
  assert.is(subscribers(c), 0)
})

test('a sanity check of the counters: onBlock on an open client opens the heads socket and polls', async () => {
  const c = await connect()
  const before = upgrades
  const unsubscribe = c.onBlock(() => {})
  for (let i = 0; i < 500 && (upgrades === before || subscribers(c) === 0); i++) await new Promise(resolve => setTimeout(resolve, 10))
  assert.ok(upgrades > before, 'no heads WebSocket: the test above could not see one either')
  assert.is(subscribers(c), 1)
  unsubscribe()
  c.close()
  await settle()
  assert.is(subscribers(c), 0)
})

test.run()
