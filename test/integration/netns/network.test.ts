// The multi-host testnet harness (daemon/tools/netns.ts) on this machine: hosts in their own network
// namespaces reach each other and the chain's bridge; a host behind a NAT dials out (seen from its
// router's address) but cannot be dialled; the delaying relay delays; destroy removes everything.
// Where namespaces are not permitted the suite says so and skips (it never passes silently).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { execFileSync, spawn } from 'node:child_process'
import { NetnsNetwork, PEER_SOURCE_PREFIX, netnsUnavailable, parseTcpRelayArgs, removeStaleNetworks, tcpRelayArgs } from '../../../daemon/tools/index.ts'

const why = netnsUnavailable()
if (why !== null) {
  process.stdout.write(`SKIPPED: the netns harness cannot run here: ${why}\n`)
  test.skip('the netns harness', () => {})
  test.run()
} else {
  let net: NetnsNetwork
  test.before(async () => {
    net = await NetnsNetwork.create({ hosts: [{ name: 'a' }, { name: 'b' }, { name: 'hidden', nat: true }] })
  })
  test.after(async () => { await net?.destroy() })

  // A TCP echo-ish listener in a namespace: node prints its peer's address for each connection.
  const listenIn = async (host: string, port: number): Promise<{ seen: () => string }> => {
    const ip = net.host(host).ip
    const child = net.spawnIn(host, process.execPath, ['-e', `require('net').createServer(s=>{s.on('error',()=>{});console.log('from '+s.remoteAddress);s.end('hi')}).listen(${port},${JSON.stringify(ip)},()=>console.log('listening'))`])
    let out = ''
    await new Promise<void>(resolve => child.stdout?.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('listening')) resolve() }))
    return { seen: () => out }
  }

  test('public hosts reach each other on their own addresses', async () => {
    const b = await listenIn('b', 7001)
    assert.ok(net.canConnect('a', net.host('b').ip, 7001))
    await new Promise(resolve => setTimeout(resolve, 200))
    assert.match(b.seen(), `from ${net.host('a').ip}`)
  })

  test('a host behind a NAT dials out from its router\'s address, and cannot be dialled', async () => {
    const a = await listenIn('a', 7002)
    assert.ok(net.canConnect('hidden', net.host('a').ip, 7002))
    await new Promise(resolve => setTimeout(resolve, 200))
    assert.match(a.seen(), `from ${net.host('hidden').publicIp}`)
    assert.is.not(net.host('hidden').publicIp, net.host('hidden').ip)
    await listenIn('hidden', 7003)
    assert.not.ok(net.canConnect('a', net.host('hidden').ip, 7003), 'its LAN address is unreachable')
    assert.not.ok(net.canConnect('a', net.host('hidden').publicIp, 7003), 'its router forwards nothing inbound')
  })

  test('every host reaches the chain\'s bridge address', async () => {
    const server = createServer(s => s.end())
    await new Promise<void>(resolve => server.listen(7004, net.chainHost, resolve))
    try {
      for (const h of ['a', 'b', 'hidden']) assert.ok(net.canConnect(h, net.chainHost, 7004), h)
    } finally {
      server.close()
    }
  })

  // The kernel's IPv4 neighbour table is one for all namespaces, bounded machine-wide (gc_thresh3);
  // a 50-host network that learned its neighbours filled it, and then new namespaces could not
  // reach the chain. The harness gives every host permanent entries instead: after the traffic
  // above, no namespace has learned one.
  test('hosts learn no neighbours: every one is a permanent entry', () => {
    const neighbours = (ns: string): string[] => execFileSync('ip', ['-n', ns, 'neigh', 'show']).toString().split('\n').filter(l => l !== '')
    for (const h of ['a', 'b', 'hidden']) {
      const ns = net.host(h).ns
      const entries = neighbours(ns)
      assert.equal(entries.filter(l => !l.includes('PERMANENT')), [], `${h} learned neighbours`)
      assert.ok(entries.some(l => l.startsWith(`${h === 'hidden' ? net.host(h).ip.replace(/\.2$/, '.1') : net.chainHost} `)), `${h} has its way out`)
    }
    assert.ok(neighbours(`sdte-${net.id}-nat-hidden`).some(l => l.startsWith(`${net.host('hidden').ip} `)), 'the router has its LAN host')
  })

  test('the delaying relay delays each direction', async () => {
    await listenIn('b', 7005)
    const relay = await net.delayRelay('a', 7006, `${net.host('b').ip}:7005`, { delayMs: 300 })
    const [ip, port] = relay.split(':')
    const script = `const t=Date.now();const s=require('net').connect(${port},'${ip}');s.on('data',()=>{console.log(Date.now()-t);process.exit(0)})`
    const child = net.spawnIn('hidden', process.execPath, ['-e', script])
    const ms = await new Promise<number>(resolve => child.stdout?.on('data', (d: Buffer) => resolve(Number(d.toString()))))
    // The reply crossed the relay once each way after the connection: at least one delay.
    assert.ok(ms >= 300, `answered after ${ms} ms`)
  })

  test('a running relay takes a new delay from its delay file', async () => {
    await listenIn('b', 7009)
    const file = join(mkdtempSync(join(tmpdir(), 'sdte-relay-')), 'delay-ms')
    await net.relays('a', [{ listen: `${net.host('a').ip}:7010`, target: `${net.host('b').ip}:7009`, delayMs: 0, delayFile: file }])
    await net.setRelayDelay(file, 300)
    const script = `const t=Date.now();const s=require('net').connect(7010,'${net.host('a').ip}');s.on('data',()=>{console.log(Date.now()-t);process.exit(0)})`
    const child = net.spawnIn('hidden', process.execPath, ['-e', script])
    const ms = await new Promise<number>(resolve => child.stdout?.on('data', (d: Buffer) => resolve(Number(d.toString()))))
    assert.ok(ms >= 300, `answered after ${ms} ms`)
    rmSync(dirname(file), { recursive: true, force: true })
  })

  test('a relay with mirrorSources connects from an address that tells the remote hosts apart', async () => {
    const b = await listenIn('b', 7007)
    const relay = await net.delayRelay('b', 7008, `${net.host('b').ip}:7007`, { delayMs: 0, mirrorSources: true })
    const [ip, port] = relay.split(':')
    assert.ok(net.canConnect('a', ip, Number(port)))
    assert.ok(net.canConnect('hidden', ip, Number(port)))
    const lastByte = (addr: string): string => addr.slice(addr.lastIndexOf('.') + 1)
    await new Promise(resolve => setTimeout(resolve, 200))
    assert.match(b.seen(), `from ${PEER_SOURCE_PREFIX}.${lastByte(net.host('a').ip)}`)
    assert.match(b.seen(), `from ${PEER_SOURCE_PREFIX}.${lastByte(net.host('hidden').publicIp)}`)
  })

  test('relays on one command line: each keeps its own options', () => {
    const relays = [{ listen: '1.2.3.4:5', target: '/tmp/x.sock', delayMs: 20, cutProbability: 0, sourcePrefix: '11.8.0', delayFile: undefined }, { listen: '/tmp/y.sock', target: '127.0.0.1:7', delayMs: 0, cutProbability: 0.5, sourcePrefix: undefined, delayFile: '/tmp/d' }]
    const argv = relays.flatMap((r, i) => [...(i > 0 ? ['--and'] : []), ...tcpRelayArgs(r)])
    assert.equal(parseTcpRelayArgs(argv), relays)
    assert.throws(() => parseTcpRelayArgs(['1.2.3.4:5', '--and', '--delay-ms', '3']), /LISTEN TARGET/)
  })

  test('what a killed process left behind is removed by the next one', async () => {
    const tools = new URL('../../../daemon/tools/index.ts', import.meta.url).pathname
    const script = `const { NetnsNetwork } = await import(${JSON.stringify(tools)}); await NetnsNetwork.create({ hosts: [{ name: 'k' }, { name: 'knat', nat: true }] }); console.log('ready'); setInterval(() => {}, 1000)`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise<void>(resolve => child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve() }))
    const leftovers = (): string[] => execFileSync('ip', ['netns', 'list']).toString().split('\n').filter(l => l.startsWith(`sdte-${child.pid}-`))
    child.kill('SIGKILL')
    await new Promise(resolve => child.once('exit', resolve))
    assert.is(leftovers().length, 3, 'a SIGKILL leaves its namespaces (host, router, host behind it)')
    removeStaleNetworks()
    assert.equal(leftovers(), [])
    assert.not.match(execFileSync('ip', ['-o', 'link', 'show']).toString(), `sdtebr${child.pid}:`)
  })

  test('destroy removes the namespaces, the bridge and the processes', async () => {
    const other = await NetnsNetwork.create({ hosts: [{ name: 'x' }, { name: 'y', nat: true }] }).catch(err => err as Error)
    // One network per process (names carry the pid): a second is refused and the first is untouched.
    assert.instance(other, Error)
    assert.ok(net.exists())
    assert.ok(net.canConnect('a', net.host('b').ip, 7001), 'still up after the refusal')
    await net.destroy()
    assert.not.ok(net.exists())
  })

  test.run()
}
