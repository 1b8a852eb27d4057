// A node answers admin_info before its enclave has booted and it has registered in CISC (issue 13: a faster
// start); a boot that fails afterwards must still end the daemon as a failed start does: the one-line error on
// stderr, exit 1, nothing left behind. Two failures: the enclave cannot open (a platform secret of the wrong
// length in the datadir), and the CISC registration cannot be paid (an unfunded account on a network that is not a
// devnet, so the daemon does not fund itself). Separate daemon processes on one devnet (anvil + contracts). And while
// the boot is under way (its registration pending: the devnet stops mining) the node is not ready, answers node_enclave
// with Unavailable, and a SIGTERM then stops it as any graceful stop does.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { devnetDown, devnetUp } from '../../../contracts/tools/index.ts'
import { computeMeasurement } from '../../../enclave/measurement.ts'
import { CLI, ROOT, freePort, startDaemon, waitFor } from '../../helpers/daemon-process.ts'
import { rpc as anvilRpc } from '../../../contracts/devnet-accounts.ts'
import { RpcError } from '../../../daemon/rpc/errors.ts'
import { PLATFORM_SECRET_FILE } from '../../../daemon/roles/trusted-node/index.ts'
import { API_FILE } from '../../../daemon/rpc/client.ts'

const dir = mkdtempSync(join(tmpdir(), 'sdte-node-boot-'))
const devnetDir = join(dir, 'devnet')
const networkPath = join(devnetDir, 'network.json')
/** How long a failing node may take to exit (a loaded machine). */
const EXIT_TIMEOUT_MS = 60_000

test.before(async () => {
  await devnetUp({ dir: devnetDir, measurements: [await computeMeasurement()] })
})

test.after(async () => {
  await devnetDown(devnetDir)
  rmSync(dir, { recursive: true, force: true })
})

/** Runs `sdte daemon` to its exit (killed past EXIT_TIMEOUT_MS: then the test fails on its code). */
async function daemonRun (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await new Promise(resolve => {
    const child = spawn(process.execPath, [CLI, 'daemon', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, EXIT_TIMEOUT_MS)
    child.on('close', code => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

/** Exit 1, the error as the last stderr line (no stack), after the control API had opened; its files gone. */
function failedAfterStart (r: { code: number | null, stdout: string, stderr: string }, datadir: string, error: RegExp): void {
  assert.is(r.code, 1, r.stdout + r.stderr)
  const last = r.stderr.trimEnd().split('\n').at(-1) ?? ''
  assert.match(last, /^sdte: /)
  assert.match(last, error)
  assert.not.match(r.stderr, /^\s+at /m, 'no stack trace')
  assert.match(r.stdout, /control API: http/, 'the control API opened before the boot failed')
  assert.not.match(r.stdout, /sdte daemon stopped/)
  assert.not.ok(existsSync(join(datadir, API_FILE)), 'the api file was removed')
}

test('a node whose enclave cannot open exits 1 with the error, after its control API had answered', async () => {
  const d = join(dir, 'bad-secret')
  mkdirSync(d, { mode: 0o700 })
  writeFileSync(join(d, 'config.json'), JSON.stringify({ keys: { scryptN: 1024 } }))
  writeFileSync(join(d, PLATFORM_SECRET_FILE), new Uint8Array(31), { mode: 0o600 })
  const r = await daemonRun(['--datadir', d, '--role', 'node', '--network', networkPath, '--listen', '/ip4/127.0.0.1/tcp/0'])
  failedAfterStart(r, d, /enclave-platform-secret must hold 32 bytes/)
})

test('a node whose CISC registration fails (an unfunded account, not a devnet) exits 1 with the error', async () => {
  const network = JSON.parse(readFileSync(networkPath, 'utf8')) as Record<string, unknown>
  const path = join(dir, 'not-a-devnet.json')
  writeFileSync(path, JSON.stringify({ ...network, devnet: false }))
  copyFileSync(join(devnetDir, 'attestation-root.key'), join(dir, 'root.key'))
  const d = join(dir, 'unfunded')
  mkdirSync(d, { mode: 0o700 })
  writeFileSync(join(d, 'config.json'), JSON.stringify({ keys: { scryptN: 1024 }, enclave: { attestationKeyFile: join(dir, 'root.key') } }))
  const r = await daemonRun(['--datadir', d, '--role', 'node', '--network', path, '--listen', '/ip4/127.0.0.1/tcp/0'])
  failedAfterStart(r, d, /insufficient funds for intrinsic transaction cost/)
})

test('until its boot ends a node is not ready and has no enclave to show; a SIGTERM during the boot stops it cleanly', async () => {
  const { rpcUrl } = JSON.parse(readFileSync(networkPath, 'utf8')) as { rpcUrl: string }
  /** The pending transactions sent from `account`. */
  const pendingFrom = async (account: string): Promise<number> =>
    (await anvilRpc<{ transactions: Array<{ from: string }> }>(rpcUrl, 'eth_getBlockByNumber', ['pending', true])).transactions.filter(t => t.from.toLowerCase() === account.toLowerCase()).length
  // No block is mined from here: the node's CISC registration stays pending, so its boot cannot end.
  await anvilRpc(rpcUrl, 'evm_setAutomine', [false])
  const d = join(dir, 'booting')
  const port = await freePort()
  try {
    const node = await startDaemon(d, {
      args: ['--role', 'node', '--network', networkPath, '--listen', '/ip4/127.0.0.1/tcp/0', '--metrics', '--metrics-port', String(port)],
      config: { keys: { scryptN: 1024 } },
      timeoutMs: 60_000
    })
    try {
      // admin_info answers during the boot; the boot reached its registration: the node's transaction sent, not mined.
      const info = await node.rpc.call<{ ethAddress: string }>('admin_info')
      await waitFor('the node\'s registration to be pending', async () => (await pendingFrom(info.ethAddress)) > 0 ? true : undefined, 60_000, 100)
      const ready = await fetch(`http://127.0.0.1:${port}/ready`)
      assert.is(ready.status, 503, 'ready before its boot ended')
      try {
        await node.rpc.call('node_enclave')
        assert.unreachable('node_enclave answered during the boot')
      } catch (err) {
        assert.instance(err, RpcError)
        assert.is((err as RpcError).data?.name, 'Unavailable', (err as Error).message)
      }
      assert.not.match(node.output(), /roles booted|registered in CISC/, 'the boot ended while no block was mined')
      const code = await node.stop('SIGTERM')
      assert.is(code, 0, node.output())
      assert.match(node.output(), /sdte daemon stopped/)
      assert.not.ok(existsSync(join(d, API_FILE)), 'the api file was removed')
    } finally {
      await node.stop('SIGKILL')
    }
  } finally {
    await anvilRpc(rpcUrl, 'evm_setAutomine', [true])
  }
})

test.run()
