// Attack (issue 10, item 8): signatures made for one deployment are replayed on another.
// Before the fix the quote, ResultInfo and code-authorization digests named neither the chain nor the
// contract, so a quote or a signed result for a trade on one DTMC was valid on every other DTMC with the
// same attestation root (another chain, or a second deployment): the same buyer and salt give the same
// tradeId everywhere. Now every signed digest holds the chain id and the DTMC address (docs/protocol.md).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet, keccak256, getBytes, hexlify, randomBytes } from 'ethers'
import { deploy } from '../../contracts/tools/deploy.ts'
import { ChainClient } from '../../contracts/client.ts'
import {
  startChain, makeMarket, makeQuote, openTrade, submit, signedResult, reverts, rand32, MEASUREMENT, CODE_HASH, TAG,
  type Chain, type Market, type OpenedTrade
} from '../../contracts/tools/market.ts'
import { signCodeDelivery } from '../../enclave/crypto.ts'
import { codeAuthDigestOf, recoverDigest, resultCommitmentOf, resultDigestOf } from '../../contracts/formats.ts'
import { encryptCodeForEnclave, generateKeyPair } from '../../enclave/index.ts'
import { startEnclave, artifactCode, buyer as enclaveBuyer, domain as enclaveDomain, rejectsWith } from '../helpers/enclave.ts'
import { tradeIdOf } from '../../contracts/formats.ts'

let chainA: Chain
let chainB: Chain // a second deployment on the same anvil, same attestation root and measurement

test.before(async () => {
  chainA = await startChain()
  const d = await deploy({ rpcUrl: chainA.anvil.rpcUrl, signer: chainA.deployer.privateKey, attestationRoot: chainA.root.address, measurements: [MEASUREMENT] })
  const network = { ...chainA.network, contracts: d.contracts, deployBlock: d.deployBlock }
  const admin = await ChainClient.connect({ network, signer: chainA.deployer.privateKey })
  chainB = { ...chainA, network, admin, clients: [admin], stop: async () => { admin.close() } }
})
test.after(async () => { await chainB?.stop(); await chainA?.stop() })

/** The same buyer, sellers and nodes, with clients bound to deployment B. */
async function onB (m: Market): Promise<Market> {
  const bind = async <T extends { wallet: Wallet }>(a: T): Promise<T> => {
    const client = await ChainClient.connect({ network: chainB.network, signer: a.wallet.privateKey, pollingIntervalMs: 50 })
    chainB.clients.push(client)
    return { ...a, client }
  }
  const sellers = []
  for (const s of m.sellers) {
    const b = await bind(s)
    await b.client.cisc.registerSeller('12D3KooW' + b.address.slice(2, 20))
    const { offerId } = await b.client.cisc.listDataset({ tag: TAG, size: s.size, unitPrice: s.unitPrice, commitment: s.commitment, policy: { allowedCodeHashes: [], anyCode: true, outputCap: 1_000_000n, minOutputPrice: 0n } })
    sellers.push({ ...b, offerId })
  }
  const nodes = []
  for (const n of m.nodes) nodes.push(await bind(n))
  return { chain: chainB, buyer: await bind(m.buyer), sellers, nodes }
}

test('a quote made for deployment A does not open a trade on deployment B', async () => {
  const a = await makeMarket(chainA, 1, 1)
  const t = await openTrade(a)
  const b = await onB(a)
  await reverts(b.buyer.client.dtmc.openTrade({
    ...t.terms, offerIds: b.sellers.map(s => s.offerId), nodes: [{ payee: a.nodes[0].address, quote: t.enclaves[0].quote }]
  }), 'QuoteNotFromRoot')
})

test('a result signed for deployment A is not accepted on deployment B', async () => {
  const a = await makeMarket(chainA, 1, 1)
  const salt = rand32()
  const ta = await openTrade(a, { salt })
  const b = await onB(a)
  // The same enclave key, honestly attested on B too (one node serving both deployments).
  const key = ta.enclaves[0].key
  const quoteB = makeQuote(chainB, key.address, ta.tradeId, CODE_HASH, a.nodes[0].address)
  const opened = await b.buyer.client.dtmc.openTrade({ ...ta.terms, offerIds: b.sellers.map(s => s.offerId), nodes: [{ payee: a.nodes[0].address, quote: quoteB }] })
  assert.is(opened.tradeId, ta.tradeId, 'same buyer and salt: the same trade id on both deployments')
  const tb: OpenedTrade = { ...ta, enclaves: [{ key, quote: quoteB }], domain: { chainId: BigInt(chainB.network.chainId), verifyingContract: chainB.network.contracts.DTMC } }
  const onA = signedResult(ta, 0) // what the enclave signed for A
  // node 0 on B commits to the result's digest on B (a one-node trade: reveals open at once)
  const nonce = rand32()
  await b.nodes[0].client.dtmc.commitResult(tb.tradeId, 0, resultCommitmentOf(resultDigestOf(tb.domain, onA.info), 0, nonce))
  await reverts(b.nodes[0].client.dtmc.submitResult(onA.info, 0, onA.signature, nonce), 'NotAttestedEnclave')
  await b.nodes[0].client.dtmc.submitResult(signedResult(tb, 0).info, 0, signedResult(tb, 0).signature, nonce) // B's own signature is fine
  await submit(a, ta, 0)
})

test('a code authorization signed for deployment A does not recover to the buyer for deployment B', () => {
  const buyer = Wallet.createRandom()
  const envelope = getBytes(rand32())
  const taskId = rand32()
  const domainA = { chainId: BigInt(chainA.network.chainId), verifyingContract: chainA.network.contracts.DTMC }
  const domainB = { chainId: BigInt(chainB.network.chainId), verifyingContract: chainB.network.contracts.DTMC }
  const sig = signCodeDelivery(buyer.privateKey, domainA, taskId, envelope)
  assert.is(recoverDigest(codeAuthDigestOf(domainA, taskId, keccak256(envelope)), sig), buyer.address)
  assert.is.not(recoverDigest(codeAuthDigestOf(domainB, taskId, keccak256(envelope)), sig), buyer.address)
})

test('an enclave its host started for another deployment refuses the buyer\'s code: it never signs for the wrong one', async () => {
  // The host claims deployment B; the buyer's trade, and its code authorization, are for the enclave tests' domain.
  const lying = await startEnclave({ domain: { chainId: 31337n, verifyingContract: chainB.network.contracts.DTMC } })
  try {
    const code = artifactCode('StatsFast')
    const salt = rand32()
    const a = await lying.attest({ tradeId: tradeIdOf(enclaveBuyer.address, salt), codeHash: keccak256(code), nonce: rand32() })
    const envelope = encryptCodeForEnclave(a.enclavePublicKey, a.taskId, { code, resultPublicKey: generateKeyPair().publicKey, resultSalt: hexlify(randomBytes(32)) })
    const signature = signCodeDelivery(enclaveBuyer.privateKey, enclaveDomain, a.taskId, envelope)
    await rejectsWith(lying.deliverCode(a.taskId, envelope, { salt, signature }), 'CodeAuthorizationError')
  } finally {
    await lying.close()
  }
})

test.run()
