// What the running daemon needs of a devnet (a network file with `devnet: true`, made by
// `sdte devnet up`, contracts/tools/devnet.ts): top up its own dev account, and read a key file the
// devnet wrote (the simulated attestation root's key, which a trusted node of a devnet uses).
// Kept apart from the devnet tool so that the daemon never imports tooling that spawns anvil.
import { readFileSync } from 'node:fs'
import { getAddress, isAddress, toQuantity } from 'ethers'
import { SdteError } from '../config/index.ts'

export class DevnetError extends SdteError {
  override name = 'DevnetError'
  override code = 'ERR_DEVNET'
}

/** How long one JSON-RPC call to a devnet may take. */
export const DEVNET_RPC_TIMEOUT_MS = 5000

/** One JSON-RPC call over fetch; throws DevnetError on an RPC error. */
export async function rpc<T = unknown> (rpcUrl: string, method: string, params: unknown[] = [], timeoutMs = DEVNET_RPC_TIMEOUT_MS): Promise<T> {
  const res = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(timeoutMs)
  })
  const body = await res.json() as { result?: T, error?: { message: string } }
  if (body.error !== undefined) throw new DevnetError(`${method}: ${body.error.message}`)
  return body.result as T
}

/** Reads a 0x private key written by devnetUp (attestation-root.key, deployer.key). */
export function readKeyFile (path: string): string {
  const key = readFileSync(path, 'utf8').trim()
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw new DevnetError(`${path} does not hold a 0x private key`)
  return key
}

/**
 * Tops up a dev account on a devnet to at least `wei` (anvil_setBalance); a balance already above it is
 * kept, so a daemon restarted with the same account keeps what it earned. Only anvil answers this.
 */
export async function fundDevAccount (rpcUrl: string, address: string, wei: bigint): Promise<bigint> {
  if (!isAddress(address)) throw new DevnetError(`${address} is not an address`)
  const current = BigInt(await rpc<string>(rpcUrl, 'eth_getBalance', [getAddress(address), 'latest']))
  if (current >= wei) return current
  await rpc(rpcUrl, 'anvil_setBalance', [getAddress(address), toQuantity(wei)])
  return wei
}
