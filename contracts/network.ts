// The network file (network.json): which chain, where its RPC is, the three contracts, the attestation
// root and accepted enclave measurements, and libp2p bootstrap peers. Written by `devnetUp` (a local
// anvil) and by `deployFromKeystore` (any other chain); a daemon started with `--network FILE` joins it.
import { SdteError } from '../config/index.ts'
import { mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs'
import { dirname } from 'node:path'
import { isAddress, getAddress } from 'ethers'

export interface ContractAddresses {
  CISC: string
  BDBC: string
  DTMC: string
}

export interface NetworkFile {
  name: string
  /** true for a local anvil started by `devnetUp` (dev accounts can be funded with `fundDevAccount`). */
  devnet: boolean
  chainId: number
  rpcUrl: string
  contracts: ContractAddresses
  /** The attestation root's address: the simulated attestation service whose key signs enclave quotes. */
  attestationRoot: string
  /** Enclave measurements DTMC accepted at deployment (0x bytes32). */
  measurements: string[]
  /** libp2p multiaddrs of bootstrap peers. */
  bootstrap: string[]
  /** The block the contracts were deployed in: where event scans start. */
  deployBlock: number
}

export class NetworkFileError extends SdteError {
  override name = 'NetworkFileError'
  override code = 'ERR_NETWORK_FILE'
}

const BYTES32 = /^0x[0-9a-fA-F]{64}$/

/** Checks a parsed network file and returns it with checksummed addresses; throws NetworkFileError naming the field. */
export function parseNetworkFile (value: unknown, source = 'network file'): NetworkFile {
  const fail = (field: string, why: string): never => { throw new NetworkFileError(`${source}: ${field} ${why}`) }
  if (typeof value !== 'object' || value === null) fail('(root)', 'is not an object')
  const v = value as Record<string, any>
  if (typeof v.name !== 'string' || v.name === '') fail('name', 'must be a non-empty string')
  if (typeof v.devnet !== 'boolean') fail('devnet', 'must be true or false')
  if (!Number.isSafeInteger(v.chainId) || v.chainId <= 0) fail('chainId', 'must be a positive integer')
  if (typeof v.rpcUrl !== 'string' || !/^(https?|wss?):\/\//.test(v.rpcUrl)) fail('rpcUrl', 'must be an http(s) or ws(s) URL')
  if (typeof v.contracts !== 'object' || v.contracts === null) fail('contracts', 'must be an object')
  const contracts: Record<string, string> = {}
  for (const k of ['CISC', 'BDBC', 'DTMC']) {
    if (!isAddress(v.contracts[k])) fail(`contracts.${k}`, 'must be an address')
    contracts[k] = getAddress(v.contracts[k])
  }
  if (!isAddress(v.attestationRoot)) fail('attestationRoot', 'must be an address')
  if (!Array.isArray(v.measurements) || !v.measurements.every((m: unknown) => typeof m === 'string' && BYTES32.test(m))) {
    fail('measurements', 'must be a list of 0x-prefixed bytes32')
  }
  if (!Array.isArray(v.bootstrap) || !v.bootstrap.every((b: unknown) => typeof b === 'string')) fail('bootstrap', 'must be a list of multiaddr strings')
  if (!Number.isSafeInteger(v.deployBlock) || v.deployBlock < 0) fail('deployBlock', 'must be a block number')
  return {
    name: v.name,
    devnet: v.devnet,
    chainId: v.chainId,
    rpcUrl: v.rpcUrl,
    contracts: contracts as unknown as ContractAddresses,
    attestationRoot: getAddress(v.attestationRoot),
    measurements: v.measurements.map((m: string) => m.toLowerCase()),
    bootstrap: v.bootstrap,
    deployBlock: v.deployBlock
  }
}

export function readNetworkFile (path: string): NetworkFile {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new NetworkFileError(`${path}: cannot read: ${(err as Error).message}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new NetworkFileError(`${path}: not JSON: ${(err as Error).message}`)
  }
  return parseNetworkFile(json, path)
}

/** Writes the file atomically (a temporary file renamed over it). */
export function writeNetworkFile (path: string, network: NetworkFile): void {
  const checked = parseNetworkFile(network)
  mkdirSync(dirname(path), { recursive: true })
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(checked, null, 2) + '\n')
  renameSync(tmp, path)
}
