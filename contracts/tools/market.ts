// A small market on a real anvil for the contract tests and the gas benchmark: a deployment with a fresh
// attestation root, funded accounts with chain clients, sellers with listed datasets, nodes with simulated
// enclave keys and root-signed quotes, and signed results.
import { randomBytes } from 'node:crypto'
import { JsonRpcProvider, Network, Wallet, keccak256, parseEther, hexlify, id, type TransactionReceipt } from 'ethers'
import { startAnvil, type AnvilNode } from './anvil.ts'
import { deploy } from './deploy.ts'
import { fundDevAccount } from '../index.ts'
import { ChainClient, ChainRevertError, type Clamp, type OpenTradeParams, type TradeTerms } from '../index.ts'
import {
  taskIdOf, reportDataOf, quoteDigestOf, resultDigestOf, resultCommitmentOf, receiptDigestOf, signDigest, inputHashOf, networkDomainOf, ResultStatus,
  type NetworkDomain, type Quote, type ResultInfo
} from '../index.ts'
import type { NetworkFile } from '../index.ts'

export const MEASUREMENT = keccak256(Buffer.from('sdte test enclave v1'))
export const CODE_HASH = keccak256(Buffer.from('analysis bytecode'))
/** The dataset tag every test offer is listed under, and its hash (a trade's tagHash). */
export const TAG = 'census'
export const TAG_HASH = id(TAG)

export const rand32 = (): string => hexlify(randomBytes(32))

export interface Chain {
  anvil: AnvilNode
  network: NetworkFile
  provider: JsonRpcProvider
  root: Wallet
  deployer: Wallet
  admin: ChainClient
  /** Every client opened on this chain, closed by stop(). */
  clients: ChainClient[]
  stop: () => Promise<void>
}

/** Starts anvil and deploys the three contracts with a fresh attestation root accepting MEASUREMENT. */
export async function startChain (): Promise<Chain> {
  const anvil = await startAnvil()
  const provider = new JsonRpcProvider(anvil.rpcUrl, Network.from(anvil.chainId), { staticNetwork: true, cacheTimeout: -1 })
  provider.pollingInterval = 50
  const root = new Wallet(Wallet.createRandom().privateKey)
  const deployer = new Wallet(Wallet.createRandom().privateKey)
  await fundDevAccount(anvil.rpcUrl, deployer.address, parseEther('1000'))
  const d = await deploy({ rpcUrl: anvil.rpcUrl, signer: deployer.privateKey, attestationRoot: root.address, measurements: [MEASUREMENT] })
  const network: NetworkFile = {
    name: 'test',
    devnet: true,
    chainId: d.chainId,
    rpcUrl: anvil.rpcUrl,
    contracts: d.contracts,
    attestationRoot: root.address,
    measurements: [MEASUREMENT],
    bootstrap: [],
    deployBlock: d.deployBlock
  }
  const admin = await ChainClient.connect({ network, signer: deployer.privateKey })
  const clients: ChainClient[] = [admin]
  return {
    anvil,
    network,
    provider,
    root,
    deployer,
    admin,
    clients,
    stop: async () => {
      for (const c of clients) c.close()
      provider.destroy()
      await anvil.stop()
    }
  }
}

export interface Account {
  wallet: Wallet
  address: string
  client: ChainClient
}

/** A fresh account funded with `ether` and its chain client. */
export async function account (chain: Chain, ether = '100'): Promise<Account> {
  const wallet = new Wallet(Wallet.createRandom().privateKey)
  await fundDevAccount(chain.anvil.rpcUrl, wallet.address, parseEther(ether))
  const client = await ChainClient.connect({ network: chain.network, signer: wallet.privateKey, pollingIntervalMs: 50 })
  chain.clients.push(client)
  return { wallet, address: wallet.address, client }
}

export async function latestTimestamp (chain: Chain): Promise<number> {
  return (await chain.provider.getBlock('latest'))!.timestamp
}

/** Moves the chain's clock forward and mines a block. */
export async function increaseTime (chain: Chain, seconds: number): Promise<void> {
  await chain.provider.send('evm_increaseTime', [seconds])
  await chain.provider.send('evm_mine', [])
}

/** A simulated enclave's task key and the quote the attestation root gives it for (tradeId, codeHash). */
export interface Enclave {
  key: Wallet
  quote: Quote
}

/** The quote `chain`'s attestation root signs for an enclave of a task on `chain`'s deployment, run by node account `operator`. */
export function makeQuote (chain: Pick<Chain, 'root' | 'network'>, enclave: string, tradeId: string, codeHash: string, operator: string, measurement = MEASUREMENT): Quote {
  const taskId = taskIdOf(tradeId, codeHash, enclave)
  const nonce = rand32()
  const digest = quoteDigestOf(networkDomainOf(chain.network), measurement, reportDataOf(enclave, taskId, tradeId, codeHash, nonce, operator))
  return { measurement, enclaveAddress: enclave, taskId, nonce, signature: signDigest(chain.root.signingKey, digest) }
}

export function makeEnclave (chain: Chain, tradeId: string, operator: string, codeHash = CODE_HASH): Enclave {
  const key = new Wallet(Wallet.createRandom().privateKey)
  return { key, quote: makeQuote(chain, key.address, tradeId, codeHash, operator) }
}

export interface Seller extends Account {
  offerId: bigint
  commitment: string
  size: bigint
  unitPrice: bigint
}

/**
 * A registered seller with one offer under TAG. Its policy allows any code unless `allowed` lists code
 * hashes (or `anyCode: false` with no list: no code at all, the deny-by-default listing).
 */
export async function makeSeller (chain: Chain, opts: {
  size?: bigint, unitPrice?: bigint, outputCap?: bigint, minOutputPrice?: bigint, allowed?: string[], anyCode?: boolean,
  allowedBuyers?: string[], maxTrades?: number, expiresAt?: number,
  /** Private mode: any analysis under this epsilon budget (micro-epsilon), with `clamps` (default one column). */
  epsilonBudget?: bigint, clamps?: Clamp[]
} = {}): Promise<Seller> {
  const a = await account(chain)
  const commitment = rand32()
  const size = opts.size ?? 10_000n
  const unitPrice = opts.unitPrice ?? 1_000_000n
  await a.client.cisc.registerSeller('12D3KooW' + a.address.slice(2, 20))
  const { offerId } = await a.client.cisc.listDataset({
    tag: TAG, size, unitPrice, commitment, policy: {
      allowedCodeHashes: opts.allowed ?? [],
      anyCode: opts.anyCode ?? (opts.epsilonBudget === undefined && (opts.allowed === undefined || opts.allowed.length === 0)),
      outputCap: opts.outputCap ?? 1_000_000n,
      minOutputPrice: opts.minOutputPrice ?? 0n,
      allowedBuyers: opts.allowedBuyers,
      maxTrades: opts.maxTrades,
      expiresAt: opts.expiresAt,
      privateMode: opts.epsilonBudget !== undefined,
      epsilonBudget: opts.epsilonBudget,
      clamps: opts.epsilonBudget === undefined ? undefined : opts.clamps ?? [{ column: 0, decimals: 0, lower: 0n, upper: 100n }]
    }
  })
  return { ...a, offerId, commitment, size, unitPrice }
}

export interface Market {
  chain: Chain
  buyer: Account
  sellers: Seller[]
  nodes: Account[]
}

/** A buyer, `sellers` sellers with one offer each, and `nodes` node accounts (registered in CISC). */
export async function makeMarket (chain: Chain, sellers: number, nodes: number): Promise<Market> {
  const buyer = await account(chain, '1000')
  const s: Seller[] = []
  for (let i = 0; i < sellers; i++) s.push(await makeSeller(chain))
  const n: Account[] = []
  for (let i = 0; i < nodes; i++) {
    const a = await account(chain)
    await a.client.cisc.registerNode({ peerId: '12D3KooW' + a.address.slice(2, 20), measurement: MEASUREMENT, pricePerGas: 10n, maxGas: 30_000_000n })
    n.push(a)
  }
  return { chain, buyer, sellers: s, nodes: n }
}

export const DEFAULT_TERMS = {
  sellerCap: parseEther('0.05'),
  nodePrice: 1_000_000_000n, // 1 gwei per enclave gas
  nodeCap: parseEther('0.01'),
  outputPrice: 10_000_000_000n, // 10 gwei per output byte
  outputCap: 4096n,
  gasCap: 5_000_000n // nodePrice × gasCap = 0.005 ether, under nodeCap
}

export interface OpenedTrade {
  tradeId: string
  terms: TradeTerms
  enclaves: Enclave[]
  inputHash: string
  deposit: bigint
  receipt: TransactionReceipt
  /** The deployment the trade is on: what its enclaves sign results for. */
  domain: NetworkDomain
  /** Results committed through `commit`, by node index, with what their reveal needs; and the nodes revealed. */
  committed: Map<number, { info: ResultInfo, signature: string, nonce: string }>
  revealed: Set<number>
}

/**
 * The buyer opens a trade over every seller's offer with every node, each with a fresh enclave and quote.
 * `payees` replaces the nodes' payee addresses (default: the node accounts).
 */
export async function openTrade (m: Market, overrides: Partial<OpenTradeParams> = {}, payees?: string[]): Promise<OpenedTrade> {
  const salt = overrides.salt ?? rand32()
  const tradeId = m.buyer.client.dtmc.tradeIdOf(m.buyer.address, salt)
  const codeHash = overrides.codeHash ?? CODE_HASH
  const payeeOf = (i: number): string => payees?.[i] ?? m.nodes[i].address
  const enclaves = m.nodes.map((_, i) => makeEnclave(m.chain, tradeId, payeeOf(i), codeHash))
  const params: OpenTradeParams = {
    salt,
    tagHash: TAG_HASH,
    codeHash,
    deadline: (await latestTimestamp(m.chain)) + 3600,
    ...DEFAULT_TERMS,
    offerIds: m.sellers.map(s => s.offerId),
    nodes: m.nodes.map((_, i) => ({ payee: payeeOf(i), quote: enclaves[i].quote })),
    ...overrides
  }
  const { tradeId: opened, deposit, receipt } = await m.buyer.client.dtmc.openTrade(params)
  if (opened !== tradeId) throw new Error('trade id is not tradeIdOf(buyer, salt)')
  return {
    tradeId, terms: params, enclaves, inputHash: inputHashOf(m.sellers.map(s => s.commitment)), deposit, receipt, domain: networkDomainOf(m.chain.network),
    committed: new Map(), revealed: new Set()
  }
}

/** The ResultInfo an enclave would report, signed by its task key. */
export function signedResult (t: OpenedTrade, node: number, result: Partial<ResultInfo> = {}, signer?: Wallet): { info: ResultInfo, signature: string } {
  const info: ResultInfo = {
    tradeId: t.tradeId,
    taskId: t.enclaves[node].quote.taskId,
    inputHash: t.inputHash,
    resultHash: keccak256(Buffer.from('the answer is 42')),
    resultSize: 16n,
    status: ResultStatus.Ok,
    ...result
  }
  return { info, signature: signDigest((signer ?? t.enclaves[node].key).signingKey, resultDigestOf(t.domain, info)) }
}

/** The delivery receipt node `node`'s enclave signs once seller `sellerIndex`'s data matched its commitment. */
export function signedReceipt (m: Market, t: OpenedTrade, node: number, sellerIndex: number, signer?: Wallet): string {
  const s = m.sellers[sellerIndex]
  const digest = receiptDigestOf(t.domain, t.tradeId, t.enclaves[node].quote.taskId, sellerIndex, s.commitment, s.address)
  return signDigest((signer ?? t.enclaves[node].key).signingKey, digest)
}

/** Seller `sellerIndex` claims its held data fee with node `node`'s receipt, through its own client. */
export async function claim (m: Market, t: OpenedTrade, sellerIndex: number, node: number, receipt = signedReceipt(m, t, node, sellerIndex)): Promise<TransactionReceipt> {
  return await m.sellers[sellerIndex].client.dtmc.claimDelivery(t.tradeId, sellerIndex, node, m.sellers.map(s => s.commitment), receipt)
}

/** Node `node` submits its result through its own client. */
/** Node `node`'s signed result and a fresh nonce, recorded for `reveal`; returns the commitment to send. */
export function prepareCommit (t: OpenedTrade, node: number, result: Partial<ResultInfo> = {}): string {
  const { info, signature } = signedResult(t, node, result)
  const nonce = rand32()
  t.committed.set(node, { info, signature, nonce })
  return resultCommitmentOf(resultDigestOf(t.domain, info), node, nonce)
}

/** Node `node` commits to its signed result (with a fresh nonce) through its own client; `reveal` opens it. */
export async function commit (m: Market, t: OpenedTrade, node: number, result: Partial<ResultInfo> = {}): Promise<TransactionReceipt> {
  const { info, signature } = signedResult(t, node, result)
  const nonce = rand32()
  const receipt = await m.nodes[node].client.dtmc.commitResult(t.tradeId, node, resultCommitmentOf(resultDigestOf(t.domain, info), node, nonce))
  t.committed.set(node, { info, signature, nonce })
  return receipt
}

/** Node `node` reveals the result it committed to. */
export async function reveal (m: Market, t: OpenedTrade, node: number): Promise<TransactionReceipt> {
  const c = t.committed.get(node)
  if (c === undefined) throw new Error(`node ${node} has not committed through commit()`)
  const receipt = await m.nodes[node].client.dtmc.submitResult(c.info, node, c.signature, c.nonce)
  t.revealed.add(node)
  return receipt
}

/**
 * Node `node` commits to its result; when that was the trade's last commitment (reveals open), every committed
 * result is revealed in commit order, as the nodes would, until the trade settles. Returns this node's last
 * transaction (its reveal when there was one). A reveal of this node that fails throws; another node's reveal
 * after the trade settled is skipped.
 */
export async function submit (m: Market, t: OpenedTrade, node: number, result: Partial<ResultInfo> = {}): Promise<TransactionReceipt> {
  let receipt = await commit(m, t, node, result)
  if (t.committed.size < t.enclaves.length) return receipt
  for (const i of t.committed.keys()) {
    if (t.revealed.has(i) || i === node) continue
    try {
      await reveal(m, t, i)
    } catch (err) {
      if (err instanceof ChainRevertError && err.errorName === 'AlreadyFinalized') break
      throw err
    }
  }
  if (!t.revealed.has(node)) receipt = await reveal(m, t, node)
  return receipt
}

/** Awaits `p` and returns the ChainRevertError it must reject with, named `errorName`. */
export async function reverts (p: Promise<unknown>, errorName: string): Promise<ChainRevertError> {
  try {
    await p
  } catch (err) {
    if (err instanceof ChainRevertError && err.errorName === errorName) return err
    throw new Error(`expected a revert with ${errorName}, got ${String(err)}`)
  }
  throw new Error(`expected a revert with ${errorName}, but it succeeded`)
}

/**
 * Wei DTMC paid `account` for trade `tradeId` (null: for every trade), from its `Credited` events: sent at once, or
 * left in `creditOf` when the send failed (the event's `sent` says which).
 */
export async function paid (m: Pick<Market, 'buyer'>, tradeId: string | null, account: string): Promise<bigint> {
  const c = m.buyer.client.dtmc.contract
  let sum = 0n
  for (const l of await c.queryFilter(c.filters.Credited(account, tradeId), 0)) sum += c.interface.parseLog(l)!.args.amount as bigint
  return sum
}

/** Sum of the ether balances of `addresses`. */
export async function sumBalances (chain: Chain, addresses: string[]): Promise<bigint> {
  let sum = 0n
  for (const a of addresses) sum += await chain.provider.getBalance(a)
  return sum
}

/** Wei spent on gas by transactions from `addresses` in blocks (fromBlock, toBlock]. */
export async function gasSpent (chain: Chain, addresses: string[], fromBlock: number, toBlock: number): Promise<bigint> {
  const from = new Set(addresses.map(a => a.toLowerCase()))
  let spent = 0n
  for (let b = fromBlock + 1; b <= toBlock; b++) {
    const block = await chain.provider.getBlock(b, true)
    for (const tx of block!.prefetchedTransactions) {
      if (!from.has(tx.from.toLowerCase())) continue
      const r = await chain.provider.getTransactionReceipt(tx.hash)
      spent += r!.gasUsed * r!.gasPrice
    }
  }
  return spent
}

/** Every account of a market plus DTMC: whose balances must add up. */
export function everyone (m: Market, extra: string[] = []): string[] {
  return [m.buyer.address, ...m.sellers.map(s => s.address), ...m.nodes.map(n => n.address), m.chain.network.contracts.DTMC, ...extra]
}

/**
 * Runs `body` and checks that the sum of the balances of `addresses` before equals the sum after plus
 * the gas those accounts paid in between: no wei created or lost.
 */
export async function conserved (chain: Chain, addresses: string[], body: () => Promise<void>): Promise<void> {
  const before = await sumBalances(chain, addresses)
  const b0 = await chain.provider.getBlockNumber()
  await body()
  const b1 = await chain.provider.getBlockNumber()
  const after = await sumBalances(chain, addresses)
  const gas = await gasSpent(chain, addresses, b0, b1)
  if (before !== after + gas) throw new Error(`balances do not add up: before ${before}, after ${after} + gas ${gas} = ${after + gas}`)
}
