// Runs anvil, the local Ethereum node shipped as a binary inside the @foundry-rs/anvil npm package
// (its platform subpackage, e.g. @foundry-rs/anvil-linux-amd64/bin/anvil), on 127.0.0.1.
//
//   const node = await startAnvil()          // a free port, stopped with the calling process
//   node.rpcUrl; await node.stop()
//
// Tests and the benchmark use startAnvil (attached); contracts/tools/devnet.ts starts it detached.
import { SdteError } from '../../config/index.ts'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, openSync, closeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { createServer } from 'node:net'
import { rpc } from '../index.ts'

/** anvil's first default dev account (mnemonic "test test ... junk"), funded with 10000 ether. */
export const ANVIL_DEV_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'

export class AnvilError extends SdteError {
  override name = 'AnvilError'
  override code = 'ERR_ANVIL'
}

/** The path of the anvil binary of this platform, from the @foundry-rs/anvil package's platform subpackage. */
export function anvilBinary (): string {
  const arch = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch]
  const platform = ({ linux: 'linux', darwin: 'darwin', win32: 'win32' } as Record<string, string>)[process.platform]
  if (arch === undefined || platform === undefined) throw new AnvilError(`anvil: no binary for ${process.platform}-${process.arch}`)
  const pkg = `@foundry-rs/anvil-${platform}-${arch}`
  const require = createRequire(import.meta.url)
  let pkgDir: string
  try {
    // resolved from the wrapper package, where npm puts its optional dependency
    const wrapper = dirname(require.resolve('@foundry-rs/anvil/package.json'))
    pkgDir = dirname(createRequire(join(wrapper, 'package.json')).resolve(`${pkg}/package.json`))
  } catch {
    throw new AnvilError(`anvil: package ${pkg} is not installed (npm ci installs it with @foundry-rs/anvil)`)
  }
  const bin = join(pkgDir, 'bin', process.platform === 'win32' ? 'anvil.exe' : 'anvil')
  if (!existsSync(bin)) throw new AnvilError(`anvil: ${bin} is missing`)
  return bin
}

/** A free TCP port on `host` (default 127.0.0.1; anvil cannot be told to pick one itself and report it). */
export async function freePort (host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** Whether nothing listens on host:port, default 127.0.0.1 (so an anvil started there is the one that answers). */
export async function portIsFree (port: number, host = '127.0.0.1'): Promise<boolean> {
  return await new Promise(resolve => {
    const server = createServer()
    server.unref()
    server.once('error', () => resolve(false))
    server.listen(port, host, () => server.close(() => resolve(true)))
  })
}

export interface AnvilOptions {
  /** TCP port on 127.0.0.1; 0 or absent picks a free one. */
  port?: number
  /** Address anvil listens on. Default 127.0.0.1 (a multi-host testnet puts it on its bridge). */
  host?: string
  chainId?: number
  /** Seconds between blocks; absent: a block per transaction (automine). */
  blockTime?: number
  /** Extra command-line arguments. */
  args?: string[]
}

/** Chain id of a local anvil devnet (anvil's own default). */
export const DEVNET_CHAIN_ID = 31337

export function anvilArgs (port: number, opts: AnvilOptions = {}): string[] {
  const args = ['--host', opts.host ?? '127.0.0.1', '--port', String(port), '--chain-id', String(opts.chainId ?? DEVNET_CHAIN_ID)]
  if (opts.blockTime !== undefined) args.push('--block-time', String(opts.blockTime))
  return [...args, ...(opts.args ?? [])]
}

/** Waits until `rpcUrl` answers eth_chainId; gives up after `timeoutMs` or when `alive()` says the process died. */
export async function waitForRpc (rpcUrl: string, timeoutMs = 15_000, alive: () => boolean = () => true): Promise<number> {
  const until = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < until) {
    if (!alive()) throw new AnvilError(`anvil exited before answering on ${rpcUrl}`)
    try {
      return Number(await rpc<string>(rpcUrl, 'eth_chainId', [], 1000))
    } catch (err) {
      last = err
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  throw new AnvilError(`anvil did not answer on ${rpcUrl} within ${timeoutMs} ms: ${String(last)}`)
}

export interface AnvilNode {
  rpcUrl: string
  port: number
  chainId: number
  pid: number
  stop: () => Promise<void>
}

/**
 * Starts anvil as a child of this process on 127.0.0.1 and waits until it answers JSON-RPC.
 * `logFile`: where its output goes (default: discarded).
 */
export async function startAnvil (opts: AnvilOptions & { logFile?: string } = {}): Promise<AnvilNode> {
  // A port picked free can be taken before anvil binds it: try a few.
  for (let attempt = 0; ; attempt++) {
    const fixed = opts.port !== undefined && opts.port !== 0
    const port = fixed ? opts.port as number : await freePort()
    if (fixed && !await portIsFree(port)) throw new AnvilError(`port ${port} on 127.0.0.1 is in use`)
    const out = opts.logFile !== undefined ? openSync(opts.logFile, 'a') : 'ignore'
    const child = spawn(anvilBinary(), anvilArgs(port, opts), { stdio: ['ignore', out, out] })
    if (typeof out === 'number') closeSync(out)
    let exited = false
    child.on('exit', () => { exited = true })
    const rpcUrl = `http://127.0.0.1:${port}`
    try {
      const chainId = await waitForRpc(rpcUrl, 15_000, () => !exited)
      return { rpcUrl, port, chainId, pid: child.pid as number, stop: async () => await stopChild(child) }
    } catch (err) {
      await stopChild(child)
      if (attempt >= 2 || fixed) throw err
    }
  }
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise<void>(resolve => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    child.once('exit', () => { clearTimeout(timer); resolve() })
    child.kill('SIGTERM')
  })
}
