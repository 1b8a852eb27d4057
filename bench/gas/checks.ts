// Gas of each check issue 10 added to DTMC and CISC, on a real anvil. Each check is measured as the
// difference between the honest 3-node, 1-seller trade on the contracts as committed and the same trade
// on a variant compiled here without that one check (the variants exist only for this measurement). The
// chain-domain words of the signed digests change the signatures, so they cannot be left out of a
// working trade: they are measured with a probe contract that hashes a digest with and without them.
// Prints a table and writes it into BENCHMARKS.md's "### Issue 10 checks" part of the "## Gas" section.
//
//   node bench/gas/checks.ts            (add --no-write to only print)
import { readFileSync, writeFileSync } from 'node:fs'
import { ContractFactory, Wallet, getCreateAddress, getAddress, parseEther, type Contract } from 'ethers'
import { compileSources, CONTRACTS_DIR } from '../../contracts/tools/compile.ts'
import { fundDevAccount } from '../../contracts/index.ts'
import { waitForReceipt } from '../../contracts/client.ts'
import { startChain, makeMarket, openTrade, commit, reveal, MEASUREMENT, type Chain } from '../../contracts/tools/market.ts'

const BENCHMARKS = new URL('../../BENCHMARKS.md', import.meta.url).pathname
const SOURCES = { 'CISC.sol': readFileSync(`${CONTRACTS_DIR}/CISC.sol`, 'utf8'), 'DTMC.sol': readFileSync(`${CONTRACTS_DIR}/DTMC.sol`, 'utf8') }

interface Variant { check: string, file: keyof typeof SOURCES, text: string, replacement: string }

/** Each check and the exact source text that, replaced, removes it. */
const VARIANTS: Variant[] = [
  {
    check: 'offer tag = trade tag (CISC `offerForTrade`, per seller)',
    file: 'CISC.sol',
    text: 'if (o.tagHash != tagHash) revert OfferTagMismatch(offerId, o.tagHash, tagHash);',
    replacement: ''
  },
  {
    check: 'outputPrice ≥ the offer\'s minOutputPrice (CISC `offerForTrade`, per seller)',
    file: 'CISC.sol',
    text: 'if (outputPrice < o.minOutputPrice) revert OutputPriceBelowMinimum(offerId, outputPrice, o.minOutputPrice);',
    replacement: ''
  },
  {
    check: 'deadline ≤ now + MAX_TRADE_DURATION (DTMC `openTrade`)',
    file: 'DTMC.sol',
    text: `        if (terms.deadline > block.timestamp + MAX_TRADE_DURATION) {
            revert DeadlineTooFar(terms.deadline, block.timestamp + MAX_TRADE_DURATION);
        }`,
    replacement: ''
  },
  {
    check: 'majority already certain? (DTMC `submitResult`, per submission)',
    file: 'DTMC.sol',
    text: 'bool certain = uint256(t.nResults) * 2 > t.nNodes && uint256(groups[t.leader].count) * 2 > t.nNodes;',
    replacement: 'bool certain = false;'
  },
  {
    check: 'commitments closed once reveals open (DTMC `commitResult`, per commitment)',
    file: 'DTMC.sol',
    text: '        if (_revealOpen(t)) revert CommitPhaseClosed();',
    replacement: ''
  },
  {
    check: 'reveals only once commitments closed (DTMC `submitResult`, per reveal)',
    file: 'DTMC.sol',
    text: '        if (!_revealOpen(t)) revert RevealTooEarly(t.nCommits == 0 ? 0 : uint256(t.commitStart) + COMMIT_WINDOW);',
    replacement: ''
  },
  {
    check: 'the reveal opens its commitment (DTMC `submitResult`, per reveal)',
    file: 'DTMC.sol',
    text: '        if (keccak256(abi.encode(digest, node, nonce)) != _commitments[info.tradeId][node]) revert CommitmentMismatch(node);',
    replacement: ''
  }
]

/** Two probes with one function each (the same selector dispatch): a digest with and without the domain words. */
const PROBE = `// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;
contract WithDomain {
    bytes32 public sink;
    function digest(bytes32 tag, bytes32 a, bytes32 b) external { sink = keccak256(abi.encode(tag, block.chainid, address(this), a, b)); }
}
contract WithoutDomain {
    bytes32 public sink;
    function digest(bytes32 tag, bytes32 a, bytes32 b) external { sink = keccak256(abi.encode(tag, a, b)); }
}
`

/** Deploys CISC and DTMC from `sources` on `chain` and returns a chain whose network points at them. */
async function deployVariant (chain: Chain, sources: Record<string, string>): Promise<Chain> {
  const artifacts = compileSources(sources)
  const get = (name: string) => artifacts.find(a => a.contractName === name)!
  const deployer = new Wallet(Wallet.createRandom().privateKey, chain.provider)
  await fundDevAccount(chain.anvil.rpcUrl, deployer.address, parseEther('10'))
  const nonce = await chain.provider.getTransactionCount(deployer.address, 'pending')
  const dtmcAddress = getCreateAddress({ from: deployer.address, nonce: nonce + 1 })
  const cisc = await new ContractFactory(get('CISC').abi as any[], get('CISC').bytecode, deployer).deploy(dtmcAddress, { nonce }) as Contract
  await waitForReceipt(chain.provider, cisc.deploymentTransaction()!.hash, 60_000, 20)
  const dtmc = await new ContractFactory(get('DTMC').abi as any[], get('DTMC').bytecode, deployer).deploy(await cisc.getAddress(), chain.root.address, [MEASUREMENT], { nonce: nonce + 1 }) as Contract
  await waitForReceipt(chain.provider, dtmc.deploymentTransaction()!.hash, 60_000, 20)
  const contracts = { ...chain.network.contracts, CISC: getAddress(await cisc.getAddress()), DTMC: getAddress(await dtmc.getAddress()) }
  return { ...chain, network: { ...chain.network, contracts } }
}

/** The honest 3-node, 1-seller trade: openTrade, then submissions until it settles (the third settles). */
async function tradeGas (chain: Chain): Promise<bigint> {
  const m = await makeMarket(chain, 1, 3)
  const t = await openTrade(m)
  let gas = t.receipt.gasUsed
  for (let i = 0; i < 3; i++) gas += (await commit(m, t, i)).gasUsed
  for (let i = 0; i < 3; i++) gas += (await reveal(m, t, i)).gasUsed
  if ((await m.buyer.client.dtmc.trade(t.tradeId))?.state !== 'settled') throw new Error('the trade did not settle')
  return gas
}

async function domainWordsGas (chain: Chain): Promise<bigint> {
  const artifacts = compileSources({ 'DomainProbe.sol': PROBE })
  const signer = new Wallet(Wallet.createRandom().privateKey, chain.provider)
  await fundDevAccount(chain.anvil.rpcUrl, signer.address, parseEther('1'))
  const gasOf = async (name: string): Promise<bigint> => {
    const a = artifacts.find(x => x.contractName === name)!
    const probe = await new ContractFactory(a.abi as any[], a.bytecode, signer).deploy() as Contract
    await waitForReceipt(chain.provider, probe.deploymentTransaction()!.hash, 60_000, 20)
    const run = async (w: string): Promise<bigint> => {
      const tx = await probe.digest(w, w, w)
      return (await waitForReceipt(chain.provider, tx.hash, 60_000, 20)).gasUsed
    }
    await run('0x' + '11'.repeat(32)) // the slot's first write; the measured call changes a non-zero slot
    return await run('0x' + '22'.repeat(32))
  }
  return await gasOf('WithDomain') - await gasOf('WithoutDomain')
}

const fmt = (n: bigint): string => n.toLocaleString('en-US')

const chain = await startChain()
try {
  const rows: Array<[string, bigint]> = []
  const full = await tradeGas(chain)
  for (const v of VARIANTS) {
    if (!SOURCES[v.file].includes(v.text)) throw new Error(`${v.file} no longer holds the text of check "${v.check}"`)
    const without = await tradeGas(await deployVariant(chain, { ...SOURCES, [v.file]: SOURCES[v.file].replace(v.text, v.replacement) }))
    rows.push([v.check, full - without])
  }
  const domain = await domainWordsGas(chain)
  const lines = [
    '### Issue 10 checks',
    '',
    'Command: `node bench/gas/checks.ts`. What each check added by issue 10 costs the honest 3-node, 1-seller trade',
    '(openTrade, three commitments and three reveals; the last one settles): the trade\'s gas on the committed contracts minus',
    'its gas on a variant compiled without that check. The domain words (chain id and DTMC address) of a signed',
    'digest are measured with two probe contracts that hash a 3-word digest with and without them. Random hashes',
    'in the trades\' calldata make each difference vary by about ±100 gas between runs.',
    '',
    '| check | gas per trade |',
    '|---|---:|',
    ...rows.map(([c, g]) => `| ${c} | ${fmt(g)} |`),
    `| chain id + DTMC address in one signed digest (3 quotes + 3 results = 6 digests per trade) | ${fmt(domain)} each, ${fmt(domain * 6n)} per trade |`,
    `| the whole trade with every check (same path) | ${fmt(full)} |`
  ]
  const body = lines.join('\n')
  console.log(body)
  if (!process.argv.includes('--no-write')) {
    let text = readFileSync(BENCHMARKS, 'utf8')
    const start = text.indexOf('### Issue 10 checks')
    if (start !== -1) {
      // From the line after the title to the next heading (the title itself starts with ##).
      const from = text.indexOf('\n', start) + 1
      const next = text.slice(from).search(/^##/m)
      text = text.slice(0, start) + text.slice(next === -1 ? text.length : from + next)
    }
    const enclave = text.search(/^## Enclave/m)
    text = enclave === -1 ? text.replace(/\n*$/, '\n\n') + body + '\n' : text.slice(0, enclave) + body + '\n\n' + text.slice(enclave)
    writeFileSync(BENCHMARKS, text)
    console.log(`wrote "### Issue 10 checks" into ${BENCHMARKS}`)
  }
} finally {
  await chain.stop()
}
