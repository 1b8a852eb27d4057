// Attack: memory held after a stream flood (issue 11, item 6). Measured before: a seller went 164 ->
// 576 MB under 27k refused offers in 30 s, a node 225 -> 824 MB under an attest flood and was still at
// 460 MB 25 minutes later. Here, on a real testnet (daemons as processes), independent libp2p hosts
// send refused offers to the seller and quote requests to the node for FLOOD_SECONDS, as fast as the
// daemons take them; after a cool-down each daemon's resident memory (VmRSS, /proc/<pid>/status)
// must be back within FLOOD_MEMORY_SLACK_MIB of where it rested before the flood.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { Wallet, hexlify, randomBytes } from 'ethers'
import { type TestnetDaemon } from '../../daemon/tools/testnet.ts'
import { waitFor } from '../../daemon/tools/child-daemons.ts'
import { RequestRefusedError, attestProtocol, offerProtocol, signOffer } from '../../p2p/index.ts'
import { attackerHost, attackTestnet } from '../helpers/attacker.ts'

/** Requests each daemon answers (refusals included) in the flood; a count, not a time, so a slow machine floods as much. */
const FLOOD_REQUESTS = 1500
/**
 * Answers each daemon must have given for the run to count (a guard against a flood that never arrived). Below
 * FLOOD_REQUESTS: on a loaded machine some of an attacker's dials fail (seen: 1,452 of 1,500 quote requests answered).
 */
const FLOOD_MIN_ANSWERED = 1000
/** Attacker hosts per daemon, and streams each keeps in flight. */
const HOSTS = 4
const IN_FLIGHT = 16
/** How far above its rest a daemon's VmRSS may stay after the flood (V8 keeps some heap it grew). */
const FLOOD_MEMORY_SLACK_MIB = 96
/**
 * The most to wait after the flood for the daemons to release what it made them hold (streams' deadlines are
 * 20-60 s; since p2p/deadline.ts clears a finished stream's timers, memory comes back within seconds).
 */
const COOL_DOWN_MS = 75_000

const bench = attackTestnet(test, 'flood-mem', { buyers: 0, sellers: 1, nodes: 1 })
const hosts = bench.hosts
const random32 = (): string => hexlify(randomBytes(32)).toLowerCase()
/** A daemon's resident memory, MiB (VmRSS of /proc/<pid>/status). */
const rssMiB = (d: TestnetDaemon): number => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${d.child.pid!}/status`, 'utf8'))![1]) / 1024

/** Failed requests (refused streams) after which the flood gives up: see `more` below. */
const FLOOD_FAILURES_ALLOWED = 4 * FLOOD_REQUESTS

test(`after ${FLOOD_REQUESTS} refused offers and ${FLOOD_REQUESTS} quote requests the daemons' memory returns within ${FLOOD_MEMORY_SLACK_MIB} MiB of rest`, async () => {
  const seller = bench.net.sellers[0]
  const node = bench.net.nodes[0]
  await sleep(10_000)
  const rest = { seller: rssMiB(seller), node: rssMiB(node) }
  const peak = { ...rest }
  const sent = { offers: 0, attests: 0 }
  const errors = new Map<string, number>()
  const inFlight = { offers: 0, attests: 0 }
  // Per flood: the offers' failures (a seller dropping the connection under the flood) must not use up the quote
  // requests' allowance before they start (a fresh-clone run answered 1,500 offers and 0 quote requests so).
  const failures = { offers: 0, attests: 0 }
  // Stops at FLOOD_REQUESTS answers, or when the daemon keeps not answering (the assertion below then says so). The
  // daemons' stream limits refuse part of the flood (DialFailedError, reset streams: 1,500 of them in most runs, also
  // before this bound was raised), so the failures allowed are a multiple of the answers wanted: with one
  // FLOOD_REQUESTS the flood sometimes gave up at 535-848 answered quote requests on a quiet machine.
  const more = (what: 'offers' | 'attests'): boolean => sent[what] + inFlight[what] < FLOOD_REQUESTS && failures[what] < FLOOD_FAILURES_ALLOWED
  const w = Wallet.createRandom()
  const flood = async (target: TestnetDaemon, kind: 'offer' | 'attest'): Promise<void> => {
    const h = await attackerHost(bench.net, { bootstrap: false })
    hosts.push(h)
    await waitFor('a connection', async () => await h.connect(target.info.addresses[0]).then(() => true, () => false), 30_000, 300)
    // A refusal is the daemon's answer and counts; anything else (the connection closed) waits and redials.
    const answered = async (err: Error, what: 'offers' | 'attests'): Promise<void> => {
      if (err instanceof RequestRefusedError) { sent[what]++; return }
      errors.set(`${what}: ${err.name}`, (errors.get(`${what}: ${err.name}`) ?? 0) + 1)
      failures[what]++
      await sleep(200)
      // On a loaded machine the connection may be gone for a while (dropped by the liveness check, new connections
      // limited by the daemon's host): wait for it back, bounded, instead of counting every request meanwhile.
      await waitFor('the connection back', async () => await h.connect(target.info.addresses[0]).then(() => true, () => false), 30_000, 300).catch(() => {})
    }
    const offers = offerProtocol(h)
    const attest = attestProtocol(h)
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      const what = kind === 'offer' ? 'offers' : 'attests'
      while (more(what)) {
        inFlight[what]++
        try { await once() } finally { inFlight[what]-- }
      }
      async function once (): Promise<void> {
        if (kind === 'offer') {
          const offer = signOffer({ type: 'offer', demandId: random32(), kind: 'node', account: w.address.toLowerCase(), measurement: random32() },
            { chainId: bench.net.network.chainId, dtmc: bench.net.network.contracts.DTMC.toLowerCase(), peerId: h.peerId }, w.privateKey)
          await offers.sendOffer(target.info.peerId, offer).then(() => { sent.offers++ }, async (err: Error) => { await answered(err, 'offers') })
        } else {
          await attest.attest(target.info.peerId, { tradeId: random32(), codeHash: random32(), nonce: random32() }).then(() => { sent.attests++ }, async (err: Error) => { await answered(err, 'attests') })
        }
      }
    }))
  }
  const sampler = setInterval(() => {
    // A daemon that died under the flood fails the test below (its exit is recorded), not the sampler.
    try {
      peak.seller = Math.max(peak.seller, rssMiB(seller))
      peak.node = Math.max(peak.node, rssMiB(node))
    } catch {}
  }, 1000)
  await Promise.all([
    ...Array.from({ length: HOSTS }, async () => { await flood(seller, 'offer') }),
    ...Array.from({ length: HOSTS }, async () => { await flood(node, 'attest') })
  ])
  clearInterval(sampler)
  await Promise.allSettled(hosts.map(async h => { await h.stop() }))
  // Back near rest as soon as it is (sampled every second), or the figures after COOL_DOWN_MS fail below.
  await waitFor('the daemons\' memory to come back near rest', () => rssMiB(seller) - rest.seller <= FLOOD_MEMORY_SLACK_MIB && rssMiB(node) - rest.node <= FLOOD_MEMORY_SLACK_MIB, COOL_DOWN_MS, 1000).catch(() => {})
  for (const d of [seller, node]) assert.is(d.child.exitCode, null, `the ${d.name} daemon is still running (exit ${String(d.child.exitCode)}, signal ${String(d.child.signalCode)})`)
  const after = { seller: rssMiB(seller), node: rssMiB(node) }
  const figures = `answered ${sent.offers} offers, ${sent.attests} quote requests (other failures: ${JSON.stringify(Object.fromEntries(errors))}); MiB rest/peak/after: seller ${rest.seller.toFixed(0)}/${peak.seller.toFixed(0)}/${after.seller.toFixed(0)}, node ${rest.node.toFixed(0)}/${peak.node.toFixed(0)}/${after.node.toFixed(0)}`
  console.log(figures)
  assert.ok(sent.offers >= FLOOD_MIN_ANSWERED && sent.attests >= FLOOD_MIN_ANSWERED, `the flood reached the daemons (${figures})`)
  assert.ok(after.seller - rest.seller <= FLOOD_MEMORY_SLACK_MIB, `the seller still holds ${(after.seller - rest.seller).toFixed(0)} MiB more than at rest (${figures})`)
  assert.ok(after.node - rest.node <= FLOOD_MEMORY_SLACK_MIB, `the node still holds ${(after.node - rest.node).toFixed(0)} MiB more than at rest (${figures})`)
})

test.run()
