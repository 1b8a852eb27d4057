// Attack: the task caps leak under concurrency (issue 11, item 6). A node keeps at most
// MAX_PENDING_TASKS_PER_PEER tasks per peer and MAX_PENDING_TASKS in all that no trade has taken up
// yet. The quota was checked, then the enclave was awaited, and only then the task counted: a peer
// that sends its requests at once passes every check before any of them counts (measured on the old
// code: 20 peers x 33 concurrent requests got 660 quotes, 640 tasks, against caps of 32 and 512).
// Here, on a real testnet (a node daemon as a process), 20 independent libp2p hosts each send
// MAX_PENDING_TASKS_PER_PEER + 1 quote requests at once, all peers together; no peer may get more
// quotes than its quota, and the enclave must never hold more than MAX_PENDING_TASKS tasks.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { hexlify, randomBytes } from 'ethers'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { attestProtocol } from '../../p2p/index.ts'
import { MAX_PENDING_TASKS, MAX_PENDING_TASKS_PER_PEER } from '../../daemon/roles/trusted-node/index.ts'
import { attackerHost, attackTestnet } from '../helpers/attacker.ts'

const PEERS = 20
const bench = attackTestnet(test, 'task-race', { buyers: 0, sellers: 0, nodes: 1 })
const hosts = bench.hosts
const random32 = (): string => hexlify(randomBytes(32)).toLowerCase()

test(`${PEERS} peers x ${MAX_PENDING_TASKS_PER_PEER + 1} concurrent quote requests stay within the per-peer and total task caps`, async () => {
  const node = bench.net.nodes[0]
  // Connected one after the other (the node's host limits how fast new connections come in), then all at once.
  for (let s = 0; s < PEERS; s++) {
    const h = await attackerHost(bench.net, { bootstrap: false })
    hosts.push(h)
    await waitFor('a connection to the node', async () => await h.connect(node.info.addresses[0]).then(() => true, () => false), 30_000, 500)
  }
  const taskCount = async (): Promise<number> => (await node.rpc.call<{ tasks: number }>('node_enclave')).tasks
  let maxTasks = 0
  let flooding = true
  const sampler = (async () => {
    while (flooding) {
      maxTasks = Math.max(maxTasks, await taskCount())
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  })()
  const perPeer = await Promise.all(hosts.map(async (h) => {
    const a = attestProtocol(h)
    let quotes = 0
    await Promise.all(Array.from({ length: MAX_PENDING_TASKS_PER_PEER + 1 }, async () => {
      await a.attest(node.info.peerId, { tradeId: random32(), codeHash: random32(), nonce: random32() }).then(() => { quotes++ }, () => {})
    }))
    return quotes
  }))
  flooding = false
  await sampler
  maxTasks = Math.max(maxTasks, await taskCount())
  const total = perPeer.reduce((a, b) => a + b, 0)
  assert.ok(total > 0, 'the node answered some of the requests')
  for (const [i, q] of perPeer.entries()) {
    assert.ok(q <= MAX_PENDING_TASKS_PER_PEER, `peer ${i} got ${q} quotes, more than its quota of ${MAX_PENDING_TASKS_PER_PEER} (all: ${perPeer.join(' ')})`)
  }
  assert.ok(maxTasks <= MAX_PENDING_TASKS, `the enclave held ${maxTasks} tasks, more than the ${MAX_PENDING_TASKS} pending tasks the node keeps`)
})

test.run()
