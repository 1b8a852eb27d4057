// The network file (network.json): which chain, which contracts, which attestation root and
// enclave measurements are accepted, and which peers to bootstrap from. `sdte devnet up` and
// `sdte deploy` write it; a daemon started with `--network FILE` joins that network.
import { readFileSync } from 'node:fs'

export interface NetworkFile {
  name: string
  /** True for a local anvil devnet: daemons may fund their own accounts with anvil_setBalance. */
  devnet: boolean
  chainId: number
  rpcUrl: string
  contracts: { CISC: string, BDBC: string, DTMC: string }
  /** Address of the (simulated) attestation service's key that signs enclave quotes. */
  attestationRoot: string
  /** Enclave measurements the network accepts. */
  measurements: string[]
  bootstrap: string[]
  deployBlock: number
}

export class NetworkFileError extends Error {
  override name = 'NetworkFileError'
  readonly code = 'NETWORK_FILE_INVALID'
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/
const BYTES32 = /^0x[0-9a-fA-F]{64}$/

/** Validates a parsed network file; every problem is named with its field. */
export function parseNetworkFile (raw: unknown, source = 'network file'): NetworkFile {
  const fail = (field: string, why: string): never => { throw new NetworkFileError(`${source}: "${field}" ${why}`) }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('(root)', 'must be a JSON object')
  const o = raw as Record<string, unknown>
  const name = o.name ?? 'unnamed'
  if (typeof name !== 'string') fail('name', 'must be a string')
  if (typeof o.chainId !== 'number' || !Number.isSafeInteger(o.chainId) || o.chainId <= 0) fail('chainId', 'must be a positive integer')
  if (typeof o.rpcUrl !== 'string' || !/^(https?|wss?):\/\//.test(o.rpcUrl)) fail('rpcUrl', 'must be an http(s) or ws(s) URL')
  const c = o.contracts as Record<string, unknown> | undefined
  if (c === null || typeof c !== 'object') fail('contracts', 'must be an object with CISC, BDBC and DTMC')
  for (const k of ['CISC', 'BDBC', 'DTMC']) {
    if (typeof c?.[k] !== 'string' || !ADDRESS.test(c[k] as string)) fail(`contracts.${k}`, 'must be an address')
  }
  if (typeof o.attestationRoot !== 'string' || !ADDRESS.test(o.attestationRoot)) fail('attestationRoot', 'must be an address')
  const measurements = o.measurements ?? []
  if (!Array.isArray(measurements) || !measurements.every(m => typeof m === 'string' && BYTES32.test(m))) fail('measurements', 'must be an array of bytes32 hex strings')
  const bootstrap = o.bootstrap ?? []
  if (!Array.isArray(bootstrap) || !bootstrap.every(b => typeof b === 'string' && b.startsWith('/'))) fail('bootstrap', 'must be an array of multiaddr strings')
  const deployBlock = o.deployBlock ?? 0
  if (typeof deployBlock !== 'number' || !Number.isSafeInteger(deployBlock) || deployBlock < 0) fail('deployBlock', 'must be a block number')
  return {
    name: name as string,
    devnet: o.devnet === true,
    chainId: o.chainId as number,
    rpcUrl: o.rpcUrl as string,
    contracts: { CISC: c!.CISC as string, BDBC: c!.BDBC as string, DTMC: c!.DTMC as string },
    attestationRoot: o.attestationRoot as string,
    measurements: (measurements as string[]).map(m => m.toLowerCase()),
    bootstrap: bootstrap as string[],
    deployBlock: deployBlock as number
  }
}

export function loadNetworkFile (path: string): NetworkFile {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new NetworkFileError(`cannot read network file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new NetworkFileError(`${path}: not valid JSON (${(err as Error).message})`)
  }
  return parseNetworkFile(raw, path)
}
