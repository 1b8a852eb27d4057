// Deploys CISC, BDBC and DTMC from the committed artifacts.
//
// CISC trusts exactly one DTMC, fixed in its constructor, and DTMC checks that CISC names it: so CISC is
// deployed first with the address DTMC will get (the deployer's nonce + 2), then BDBC, then DTMC.
//
//   deploy({ rpcUrl, signer, attestationRoot, measurements })        -> addresses (devnetUp uses it)
//   deployFromKeystore({ rpcUrl, keystorePath, password, attestationRoot, measurements, out })
//                                                                    -> a network.json for a public chain
//   sdte deploy --rpc URL --keystore FILE --password-file FILE --attestation-root ADDRESS
//               [--measurement 0x..]... --out network.json [--name NAME] [--bootstrap MULTIADDR]...
//     (daemon/cli.ts parses those flags; this module has no command line of its own)
import { SdteError } from '../../config/index.ts'
import { readFileSync } from 'node:fs'
import {
  ContractFactory, JsonRpcProvider, Wallet, getCreateAddress, getAddress, isAddress, Network, type Signer,
  type TransactionReceipt, type ContractTransactionResponse
} from 'ethers'
import { ARTIFACTS, waitForReceipt, type ContractName } from '../index.ts'
import { writeNetworkFile, type ContractAddresses, type NetworkFile } from '../index.ts'

export class DeployError extends SdteError {
  override name = 'DeployError'
  override code = 'ERR_DEPLOY'
}

export interface DeployOptions {
  rpcUrl: string
  /** The deployer: an ethers Signer (connected or not) or a private key. It becomes DTMC's admin. */
  signer: Signer | string
  attestationRoot: string
  measurements: string[]
  /** How often to look for the receipts (default 250 ms). */
  pollingIntervalMs?: number
}

export interface Deployment {
  contracts: ContractAddresses
  chainId: number
  deployBlock: number
  /** Gas of each deployment transaction. */
  gas: Record<keyof ContractAddresses, bigint>
}

const BYTES32 = /^0x[0-9a-fA-F]{64}$/

function factory (name: ContractName, signer: Signer): ContractFactory {
  return new ContractFactory(ARTIFACTS[name].abi, ARTIFACTS[name].bytecode, signer)
}

/** Deploys the three contracts; returns their addresses once all three are mined. */
export async function deploy (opts: DeployOptions): Promise<Deployment> {
  if (!isAddress(opts.attestationRoot)) throw new DeployError(`attestationRoot ${opts.attestationRoot} is not an address`)
  for (const m of opts.measurements) if (!BYTES32.test(m)) throw new DeployError(`measurement ${m} is not a 0x bytes32`)
  let provider: JsonRpcProvider | undefined
  let signer: Signer
  if (typeof opts.signer === 'string' || opts.signer.provider === null) {
    provider = new JsonRpcProvider(opts.rpcUrl, undefined, { batchMaxCount: 1, cacheTimeout: -1 })
    signer = typeof opts.signer === 'string' ? new Wallet(opts.signer, provider) : opts.signer.connect(provider)
  } else {
    signer = opts.signer
  }
  try {
    const pollMs = opts.pollingIntervalMs ?? 250
    const from = await signer.getAddress()
    const chainId = Number((await signer.provider!.getNetwork()).chainId)
    const nonce = await signer.provider!.getTransactionCount(from, 'pending')
    const dtmcAddress = getCreateAddress({ from, nonce: nonce + 2 })
    const mined = async (c: { deploymentTransaction: () => ContractTransactionResponse | null }): Promise<TransactionReceipt> => {
      const hash = c.deploymentTransaction()!.hash
      const receipt = await waitForReceipt(signer.provider!, hash, 300_000, pollMs)
      if (receipt.status !== 1) throw new DeployError(`deployment transaction ${hash} failed`)
      return receipt
    }
    // CISC and BDBC back to back with explicit nonces; DTMC once CISC is mined, since its constructor
    // (and so its gas estimate) calls CISC.
    const cisc = await factory('CISC', signer).deploy(dtmcAddress, { nonce })
    const bdbc = await factory('BDBC', signer).deploy({ nonce: nonce + 1 })
    const ciscReceipt = await mined(cisc)
    const dtmc = await factory('DTMC', signer).deploy(await cisc.getAddress(), getAddress(opts.attestationRoot), opts.measurements, { nonce: nonce + 2 })
    const receipts = [ciscReceipt, await mined(bdbc), await mined(dtmc)]
    const contracts = {
      CISC: getAddress(await cisc.getAddress()),
      BDBC: getAddress(await bdbc.getAddress()),
      DTMC: getAddress(await dtmc.getAddress())
    }
    if (contracts.DTMC !== getAddress(dtmcAddress)) {
      throw new DeployError(`DTMC landed at ${contracts.DTMC}, not ${dtmcAddress}: another transaction used the deployer's nonce; deploy again`)
    }
    return {
      contracts,
      chainId,
      deployBlock: Math.min(...receipts.map(r => r.blockNumber)),
      gas: { CISC: receipts[0].gasUsed, BDBC: receipts[1].gasUsed, DTMC: receipts[2].gasUsed }
    }
  } finally {
    provider?.destroy()
  }
}

export interface KeystoreDeployOptions {
  rpcUrl: string
  /** An encrypted JSON keystore (geth / ethers format). */
  keystorePath: string
  password: string
  attestationRoot: string
  measurements: string[]
  /** Where to write network.json. */
  out: string
  /** The network's name in the file (default: "chain-<chainId>"). */
  name?: string
  bootstrap?: string[]
}

/** Deploys to any chain (a public testnet) with a keystore account and writes the network file. */
export async function deployFromKeystore (opts: KeystoreDeployOptions): Promise<NetworkFile> {
  let wallet: Wallet
  try {
    wallet = await Wallet.fromEncryptedJson(readFileSync(opts.keystorePath, 'utf8'), opts.password) as Wallet
  } catch (err) {
    throw new DeployError(`cannot open keystore ${opts.keystorePath}: ${(err as Error).message}`)
  }
  const provider = new JsonRpcProvider(opts.rpcUrl, undefined, { batchMaxCount: 1, cacheTimeout: -1 })
  try {
    const chainId = Number((await provider.getNetwork()).chainId)
    const staticProvider = new JsonRpcProvider(opts.rpcUrl, Network.from(chainId), { staticNetwork: true, batchMaxCount: 1, cacheTimeout: -1 })
    try {
      const d = await deploy({ ...opts, signer: wallet.connect(staticProvider) })
      const network: NetworkFile = {
        name: opts.name ?? `chain-${d.chainId}`,
        devnet: false,
        chainId: d.chainId,
        rpcUrl: opts.rpcUrl,
        contracts: d.contracts,
        attestationRoot: getAddress(opts.attestationRoot),
        measurements: opts.measurements.map(m => m.toLowerCase()),
        bootstrap: opts.bootstrap ?? [],
        deployBlock: d.deployBlock
      }
      writeNetworkFile(opts.out, network)
      return network
    } finally {
      staticProvider.destroy()
    }
  } finally {
    provider.destroy()
  }
}
