// A devnet other hosts can join (issue 12): `sdte devnet up --host IP` puts the chain and its relay on
// an address of the operator's choosing and writes the relay's multiaddr into network.json, so that a
// daemon on another host, started with nothing but `--network FILE`, finds the network. The other
// host is a network namespace of its own (daemon/tools/netns.ts) whose only way out is the bridge the
// devnet listens on. And a daemon that starts with no bootstrap peer says so, in its log and in
// admin_info, with the fix. Where namespaces are not permitted, the join across hosts says so and skips.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NetnsNetwork, netnsUnavailable, runCli, startDaemon, waitFor, type DaemonProcess } from '../../daemon/tools/index.ts'
import { readNetworkFile, writeNetworkFile } from '../../contracts/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'sdte-join-'))
const P2P_PORT = 4001
const RELAY_PORT = 4010
const daemons: DaemonProcess[] = []

interface Info { peerId: string, bootstrap: string[], warnings: string[] }

test.after(async () => {
  await Promise.all(daemons.map(async d => await d.stop('SIGKILL')))
  for (const d of ['devnet', 'devnet-ns']) await runCli(['devnet', 'down', '--dir', join(dir, d)])
  if (process.env.SDTE_KEEP_TEST_DIRS === undefined) rmSync(dir, { recursive: true, force: true })
})

test('a daemon started with no bootstrap peer warns in its log and in admin_info, naming the fix', async () => {
  const up = await runCli(['devnet', 'up', '--dir', join(dir, 'devnet'), '--no-relay'])
  assert.is(up.code, 0, up.stderr)
  assert.match(up.stdout, /bootstrap \(none: daemons need --bootstrap\)/)
  const networkPath = join(dir, 'devnet', 'network.json')
  assert.equal(readNetworkFile(networkPath).bootstrap, [])
  const d = await startDaemon(join(dir, 'lonely'), { args: ['--role', 'buyer', '--network', networkPath], config: { keys: { scryptN: 1024 } }, timeoutMs: 60_000 })
  daemons.push(d)
  assert.match(d.output(), /no bootstrap peers: .*give --bootstrap MULTIADDR/)
  const info = await d.rpc.call<Info>('admin_info')
  assert.equal(info.bootstrap, [])
  assert.is(info.warnings.length, 1)
  assert.match(info.warnings[0], /^no bootstrap peers: .*sdte devnet up writes its relay there/)
})

const why = netnsUnavailable()
if (why !== null) {
  process.stdout.write(`SKIPPED: joining a devnet from another host needs network namespaces: ${why}\n`)
  test.skip('a daemon on another host joins the devnet with only its network file', () => {})
} else {
  test('a daemon on another host joins the devnet with only its network file', async () => {
    const hosts = await NetnsNetwork.create({ hosts: [{ name: 'joiner' }] })
    try {
      // The chain and the relay on the bridge's address: the other host reaches them there, not on loopback.
      const devnet = join(dir, 'devnet-ns')
      const up = await runCli(['devnet', 'up', '--dir', devnet, '--host', hosts.chainHost, '--relay-port', String(RELAY_PORT)])
      assert.is(up.code, 0, up.stderr)
      const network = readNetworkFile(join(devnet, 'network.json'))
      assert.is(network.rpcUrl.startsWith(`http://${hosts.chainHost}:`), true, network.rpcUrl)
      assert.is(network.bootstrap.length, 1)
      assert.match(network.bootstrap[0], new RegExp(`^/ip4/${hosts.chainHost.replaceAll('.', '\\.')}/tcp/${RELAY_PORT}/p2p/12D3Koo\\w+$`))
      const relayPeer = network.bootstrap[0].split('/p2p/')[1]
      const status = await runCli(['devnet', 'status', '--dir', devnet, '--json'])
      assert.ok(Number.isInteger(JSON.parse(status.stdout).relayPid), status.stdout)

      // The other host gets a copy of the file, as an operator would hand it over.
      const copy = join(dir, 'joiner-network.json')
      writeNetworkFile(copy, network)
      const h = hosts.host('joiner')
      const datadir = join(dir, 'joiner')
      const joiner = await startDaemon(datadir, {
        args: ['--role', 'buyer', '--network', copy, '--listen', `/ip4/${h.ip}/tcp/${P2P_PORT}`],
        config: { keys: { scryptN: 1024 } },
        wrap: h.wrap,
        timeoutMs: 60_000
      })
      daemons.push(joiner)
      joiner.rpc = await hosts.controlClient('joiner', datadir)
      await waitFor('the joiner to connect to the devnet\'s relay', async () => {
        const peers = await joiner.rpc.call<Array<{ peerId: string }>>('admin_peers')
        return peers.some(p => p.peerId === relayPeer) ? true : undefined
      }, 60_000, 250)
      const info = await joiner.rpc.call<Info>('admin_info')
      assert.equal(info.bootstrap, network.bootstrap)
      assert.equal(info.warnings, [])
      assert.not.match(joiner.output(), /no bootstrap peers/)
    } finally {
      await Promise.all(daemons.splice(1).map(async d => await d.stop('SIGKILL')))
      await runCli(['devnet', 'down', '--dir', join(dir, 'devnet-ns')])
      await hosts.destroy()
    }
  })
}

test.run()
