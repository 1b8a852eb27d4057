// The embedded local testnet: anvil on loopback, detached so it outlives the command that started it,
// with the three contracts deployed and a network file for daemons to join.
//
// DIR holds:
//   network.json            the network file (contracts/network.ts)
//   anvil.pid, anvil.log    the anvil process and its output
//   attestation-root.key    the simulated attestation service's private key (0600; never logged)
//   deployer.key            the funded dev deployer's private key, DTMC's admin (0600)
//
//   sdte devnet up --dir DIR [--host IP] [--announce IP] [--port N] [--measurement 0x..]... [--block-time S] [--bootstrap MULTIADDR]...
//   sdte devnet down --dir DIR
//   sdte devnet status --dir DIR
// (daemon/cli.ts parses those flags; this module has no command line of its own.)
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Wallet, parseEther } from 'ethers'
import { DevnetError, fundDevAccount, readNetworkFile, rpc, writeNetworkFile, type NetworkFile } from '../index.ts'
import { anvilArgs, anvilBinary, freePort, portIsFree, waitForRpc, AnvilError, DEVNET_CHAIN_ID } from './anvil.ts'
import { deploy } from './deploy.ts'

const DEPLOYER_FUNDS = parseEther('10000')

export interface DevnetOptions {
  dir: string
  /** RPC port on `host`; absent or 0: a free one. */
  port?: number
  /** Address anvil listens on. Default 127.0.0.1; 0.0.0.0 (every address) needs `announce`. */
  host?: string
  /** Address other hosts reach the chain at, which network.json's rpcUrl names. Default: `host`. */
  announce?: string
  /** Enclave measurements DTMC accepts (0x bytes32); more can be added later by the admin (deployer.key). */
  measurements?: string[]
  chainId?: number
  /** Seconds between blocks; absent: one block per transaction. */
  blockTime?: number
  name?: string
  bootstrap?: string[]
}

export interface DevnetStatus {
  running: boolean
  pid?: number
  rpcUrl?: string
  chainId?: number
  blockNumber?: number
  network?: NetworkFile
}

const paths = (dir: string) => ({
  network: join(dir, 'network.json'),
  pid: join(dir, 'anvil.pid'),
  log: join(dir, 'anvil.log'),
  root: join(dir, 'attestation-root.key'),
  deployer: join(dir, 'deployer.key')
})

function writeSecret (path: string, value: string): void {
  rmSync(path, { force: true })
  writeFileSync(path, value + '\n', { mode: 0o600 })
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  // Where /proc exists, also make sure the pid is still an anvil (pids are reused) and not a zombie
  // waiting to be reaped.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('anvil')
  } catch {
    return !existsSync('/proc/self/stat') // no /proc: trust kill(pid, 0)
  }
}

function readPid (dir: string): number | undefined {
  const file = paths(dir).pid
  if (!existsSync(file)) return undefined
  const pid = Number(readFileSync(file, 'utf8').trim())
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}

/** Starts anvil detached in DIR, deploys the contracts and writes DIR/network.json. */
export async function devnetUp (opts: DevnetOptions): Promise<NetworkFile> {
  const dir = resolve(opts.dir)
  const p = paths(dir)
  // Bad input changes nothing: checked before DIR is made.
  for (const m of opts.measurements ?? []) if (!/^0x[0-9a-fA-F]{64}$/.test(m)) throw new DevnetError(`measurement ${m} is not a 0x bytes32`)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const running = readPid(dir)
  if (running !== undefined && isAlive(running)) {
    throw new DevnetError(`a devnet is already running in ${dir} (pid ${running}); stop it first with: sdte devnet down --dir ${dir}`)
  }
  const chainId = opts.chainId ?? DEVNET_CHAIN_ID
  const host = opts.host ?? '127.0.0.1'
  const announce = opts.announce ?? host
  if (announce === '0.0.0.0' || announce === '::') throw new DevnetError(`the chain listens on every address (${host}): give the one other hosts reach it at (announce)`)
  const port = opts.port !== undefined && opts.port !== 0 ? opts.port : await freePort(host)
  if (!await portIsFree(port, host)) throw new DevnetError(`port ${port} on ${host} is in use`)
  const rpcUrl = `http://${announce.includes(':') ? `[${announce}]` : announce}:${port}`

  const log = openSync(p.log, 'a')
  const child = spawn(anvilBinary(), anvilArgs(port, { chainId, blockTime: opts.blockTime, host }), {
    detached: true,
    stdio: ['ignore', log, log]
  })
  closeSync(log)
  const pid = child.pid
  if (pid === undefined) throw new DevnetError('anvil did not start')
  child.unref()
  writeFileSync(p.pid, `${pid}\n`)
  let exited = false
  child.once('exit', () => { exited = true })

  try {
    await waitForRpc(`http://${host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host}:${port}`, 15_000, () => !exited)
    const root = Wallet.createRandom()
    writeSecret(p.root, root.privateKey)
    const deployer = Wallet.createRandom()
    writeSecret(p.deployer, deployer.privateKey)
    await fundDevAccount(rpcUrl, deployer.address, DEPLOYER_FUNDS)
    const measurements = (opts.measurements ?? []).map(m => m.toLowerCase())
    const d = await deploy({ rpcUrl, signer: deployer.privateKey, attestationRoot: root.address, measurements })
    const network: NetworkFile = {
      name: opts.name ?? 'devnet',
      devnet: true,
      chainId: d.chainId,
      rpcUrl,
      contracts: d.contracts,
      attestationRoot: root.address,
      measurements,
      bootstrap: opts.bootstrap ?? [],
      deployBlock: d.deployBlock
    }
    writeNetworkFile(p.network, network)
    return network
  } catch (err) {
    await devnetDown(dir)
    if (err instanceof AnvilError) throw new DevnetError(`${err.message} (see ${p.log})`)
    throw err
  }
}

/** Stops the devnet of DIR (if running) and removes its pid file. Returns whether a process was stopped. */
export async function devnetDown (dir: string): Promise<boolean> {
  const pidFile = paths(resolve(dir)).pid
  const pid = readPid(dir)
  let stopped = false
  if (pid !== undefined && isAlive(pid)) {
    process.kill(pid, 'SIGTERM')
    const until = Date.now() + 5000
    while (isAlive(pid) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 50))
    if (isAlive(pid)) process.kill(pid, 'SIGKILL')
    stopped = true
  }
  rmSync(pidFile, { force: true })
  return stopped
}

/** Whether the devnet of DIR runs, and its chain's head. */
export async function devnetStatus (dir: string): Promise<DevnetStatus> {
  const p = paths(resolve(dir))
  const pid = readPid(dir)
  const network = existsSync(p.network) ? readNetworkFile(p.network) : undefined
  if (pid === undefined || !isAlive(pid)) return { running: false, network }
  const status: DevnetStatus = { running: true, pid, network, rpcUrl: network?.rpcUrl }
  if (network !== undefined) {
    try {
      status.chainId = Number(await rpc<string>(network.rpcUrl, 'eth_chainId'))
      status.blockNumber = Number(await rpc<string>(network.rpcUrl, 'eth_blockNumber'))
    } catch {
      // the process is there but not answering (yet)
    }
  }
  return status
}

