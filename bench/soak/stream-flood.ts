// Stream flood against one serving process, as fast as this machine allows (issue 11 item 6: "a seller
// went 164 -> 576 MB, about 15 KB per finished stream, freed ~40 s later"). The server is a child
// process (so its VmRSS is its own) in one of two modes, in the same run:
//   bare: the libp2p v3 node our host builds, with a bare handler (read one message, write a reply,
//         close) registered on node.handle directly: the baseline of libp2p itself;
//   sdte: the same host serving /sdte/offer/1 through our protocol endpoint (host.handle's deadline,
//         messageChannel, answerRequest), every offer refused, as a seller refuses a made-up offer.
// Attacker hosts in this process open streams as fast as they are answered for --seconds, then the
// server rests for --cooldown seconds. Reported per mode: streams answered and their rate, the server's
// VmRSS (rest, peak, end of flood, after the cool-down) and its V8 heap after a full GC at the same
// points, i.e. what is retained rather than garbage not yet collected.
//
//   node_modules/.bin/node bench/soak/stream-flood.ts [--seconds 30] [--cooldown 30] [--hosts 8] [--inflight 16] [--modes bare,sdte] [--snapshots DIR]
import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { writeHeapSnapshot } from 'node:v8'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { Wallet, hexlify, randomBytes } from 'ethers'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { createP2PHost, offerProtocol, signOffer, RefuseRequest, type P2PHost } from '../../p2p/index.ts'

/** The bare baseline's protocol id. */
export const BARE_PROTOCOL = '/bench/bare/1'
/** Memory sample period during the flood and the cool-down, ms. */
export const FLOOD_SAMPLE_MS = 1000

type Mode = 'bare' | 'sdte'
interface Stats { rssMiB: number, heapMiB: number, heapAfterGcMiB: number, activeTimeouts: number }

const rssOf = (pid: number): number => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024

// ---- the server (child process) ----
async function serve (mode: Mode): Promise<void> {
  const host = await createP2PHost({ bootstrap: [], maxConnections: 1000, maxIncomingPendingConnections: 100, inboundConnectionThreshold: 1000 }, { privateKey: await generateKeyPair('Ed25519') })
  await host.start()
  if (mode === 'bare') {
    await host.node.handle(BARE_PROTOCOL, async (stream) => {
      stream.addEventListener('message', () => {
        stream.send(new Uint8Array([1, 0x7b]))
        stream.close().catch(() => {})
      }, { once: true })
    }, { maxInboundStreams: 1024 })
  } else {
    await offerProtocol(host).start({ onOffer: async () => { throw new RefuseRequest('UnknownDemand', 'no such demand') } })
  }
  process.on('message', (m: string) => {
    if (m.startsWith('snapshot ')) { globalThis.gc?.(); process.send!({ snapshot: writeHeapSnapshot(m.slice(9)) }); return }
    if (m !== 'stats') return
    const heapMiB = process.memoryUsage().heapUsed / 2 ** 20
    globalThis.gc?.()
    const stats: Stats = {
      rssMiB: process.memoryUsage().rss / 2 ** 20,
      heapMiB,
      heapAfterGcMiB: process.memoryUsage().heapUsed / 2 ** 20,
      activeTimeouts: process.getActiveResourcesInfo().filter(r => r === 'Timeout').length
    }
    process.send!(stats)
  })
  process.send!({ address: host.addresses()[0] })
}

// ---- the flood (parent) ----
async function statsOf (child: ChildProcess): Promise<Stats> {
  return await new Promise((resolve) => {
    const on = (m: Stats): void => { child.off('message', on); resolve(m) }
    child.on('message', on)
    child.send('stats')
  })
}

/** Has the server write a heap snapshot (after a full GC) to `path`. */
async function snapshot (child: ChildProcess, path: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const on = (m: { snapshot?: string }): void => { if (m.snapshot !== undefined) { child.off('message', on); resolve() } }
    child.on('message', on)
    child.send(`snapshot ${path}`)
  })
}

export interface FloodRow { mode: Mode, answered: number, failed: number, perSecond: number, rest: Stats, peak: number, end: Stats, after: Stats }

export async function flood (mode: Mode, o: { seconds: number, cooldown: number, hosts: number, inflight: number, snapshots?: string }): Promise<FloodRow> {
  const child = fork(new URL(import.meta.url).pathname, ['--serve', mode], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const address = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { address: string }) => { resolve(m.address) })
    child.once('exit', (code) => { reject(new Error(`server exited ${String(code)}`)) })
  })
  const hosts: P2PHost[] = []
  try {
    await sleep(3000)
    const rest = await statsOf(child)
    if (o.snapshots !== undefined) await snapshot(child, `${o.snapshots}/${mode}-rest.heapsnapshot`)
    let peak = rest.rssMiB
    const sampler = setInterval(() => { try { peak = Math.max(peak, rssOf(child.pid!)) } catch {} }, FLOOD_SAMPLE_MS)
    let answered = 0
    let failed = 0
    const errors = new Map<string, number>()
    const end = Date.now() + o.seconds * 1000
    const w = Wallet.createRandom()
    await Promise.all(Array.from({ length: o.hosts }, async () => {
      const h = await createP2PHost({ bootstrap: [] }, { privateKey: await generateKeyPair('Ed25519') })
      hosts.push(h)
      await h.start()
      // The server's inbound connection gating may refuse a burst of dials: retry a few times.
      let conn: { peerId: string } | undefined
      for (let i = 0; conn === undefined; i++) {
        conn = await h.connect(address).catch(async (err: unknown) => { if (i > 20) throw err; await sleep(300); return undefined })
      }
      const peer = conn.peerId
      const offers = offerProtocol(h)
      const offer = signOffer({ type: 'offer', demandId: hexlify(randomBytes(32)), kind: 'node', account: w.address.toLowerCase(), measurement: hexlify(randomBytes(32)) },
        { chainId: 31337, dtmc: '0x' + '11'.repeat(20), peerId: h.peerId }, w.privateKey)
      await Promise.all(Array.from({ length: o.inflight }, async () => {
        while (Date.now() < end) {
          try {
            if (mode === 'sdte') {
              await offers.sendOffer(peer, offer).catch((err: Error) => { if (!(err.name === 'RequestRefusedError')) throw err })
            } else {
              const s = await h.node.dialProtocol(peerIdFromString(peer), BARE_PROTOCOL)
              s.send(new Uint8Array([1, 0x7b]))
              await new Promise<void>((resolve, reject) => {
                s.addEventListener('message', () => { resolve() }, { once: true })
                s.addEventListener('close', (e) => { e.error != null ? reject(e.error) : resolve() }, { once: true })
              })
              await s.close().catch(() => {})
            }
            answered++
          } catch (err) {
            failed++
            const k = `${(err as Error).name}: ${(err as Error).message.slice(0, 80)}`
            errors.set(k, (errors.get(k) ?? 0) + 1)
            // The server may close a flooding connection: dial again.
            await sleep(50)
            if (h.peers().every(p => p.peerId !== peer)) await h.connect(address).catch(() => {})
          }
        }
      }))
    }))
    const endStats = await statsOf(child)
    if (o.snapshots !== undefined) await snapshot(child, `${o.snapshots}/${mode}-end.heapsnapshot`)
    peak = Math.max(peak, endStats.rssMiB)
    await Promise.allSettled(hosts.map(async h => { await h.stop() }))
    await sleep(o.cooldown * 1000)
    clearInterval(sampler)
    const after = await statsOf(child)
    if (errors.size > 0) console.error(mode, 'failures:', [...errors].sort((a, b) => b[1] - a[1]).slice(0, 4))
    return { mode, answered, failed, perSecond: Math.round(answered / o.seconds), rest, peak, end: endStats, after }
  } finally {
    await Promise.allSettled(hosts.map(async h => { await h.stop() }))
    child.kill()
  }
}

const f = (n: number): string => n.toFixed(0)

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      seconds: { type: 'string', default: '30' },
      cooldown: { type: 'string', default: '30' },
      hosts: { type: 'string', default: '8' },
      inflight: { type: 'string', default: '16' },
      modes: { type: 'string', default: 'bare,sdte' },
      snapshots: { type: 'string' }
    }
  })
  if (values.serve !== undefined) {
    await serve(values.serve as Mode)
  } else {
    const o = { seconds: Number(values.seconds), cooldown: Number(values.cooldown), hosts: Number(values.hosts), inflight: Number(values.inflight), snapshots: values.snapshots }
    console.log('| server | streams answered (failed) | streams/s | VmRSS MiB rest / peak / end / after | heap after GC MiB rest / end / after | retained KiB per stream at end | Timeouts rest / end / after |')
    console.log('|---|---:|---:|---|---|---:|---|')
    for (const mode of values.modes.split(',') as Mode[]) {
      const r = await flood(mode, o)
      const perStream = (r.end.heapAfterGcMiB - r.rest.heapAfterGcMiB) * 1024 / Math.max(1, r.answered)
      console.log(`| ${mode} | ${r.answered} (${r.failed}) | ${r.perSecond} | ${f(r.rest.rssMiB)} / ${f(r.peak)} / ${f(r.end.rssMiB)} / ${f(r.after.rssMiB)} | ` +
        `${f(r.rest.heapAfterGcMiB)} / ${f(r.end.heapAfterGcMiB)} / ${f(r.after.heapAfterGcMiB)} | ${perStream.toFixed(2)} | ${r.rest.activeTimeouts} / ${r.end.activeTimeouts} / ${r.after.activeTimeouts} |`)
    }
    process.exit(0)
  }
}
