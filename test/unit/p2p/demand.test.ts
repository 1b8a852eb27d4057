import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet, keccak256 } from 'ethers'
import { depositOf } from '../../../contracts/client.ts'
import { signDemand, encodeDemand, decodeDemand, createDemandValidator, DemandInvalidError, DEMAND_VERDICTS, MAX_DEMAND_BYTES, DEMAND_RATE_WINDOW_SECONDS, type Demand, type DemandTerms } from '../../../p2p/demand/index.ts'

const buyer = Wallet.createRandom()
const DTMC = '0x' + 'ab'.repeat(20)
const NOW = 1_800_000_000
const terms: DemandTerms = {
  chainId: 31337,
  dtmc: DTMC,
  buyerPeer: '12D3KooWKNzdPZvfGdzh5uAjRJh14fZmMybYaoxq8oBnZ297dokY',
  tag: 'weather-2026',
  codeHash: keccak256('0x6001'),
  nodes: 3,
  sellers: 2,
  sellerPrice: 10n,
  sellerCap: 1_000_000n,
  nodePrice: 1n,
  nodeCap: 5_000_000n,
  outputPrice: 100n,
  outputCap: 4096n,
  expiresAt: NOW + 600,
  tradeSeconds: 3600,
  epsilon: 0n
}
const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o, (_k, v) => typeof v === 'bigint' ? v.toString() : v))
const reasonOf = (fn: () => unknown): string => {
  try { fn() } catch (err) { assert.instance(err, DemandInvalidError); return (err as DemandInvalidError).reason }
  return 'accepted'
}

test('a signed demand round-trips and verifies', () => {
  const d = signDemand(terms, buyer)
  const { demand, demandHash } = decodeDemand(encodeDemand(d))
  assert.equal(demand, d)
  assert.match(demandHash, /^0x[0-9a-f]{64}$/)
  assert.is(depositOf(d), 2n * (1_000_000n + 100n * 4096n) + 3n * 5_000_000n) // the output price is paid to each seller
})

test('a changed field breaks the signature; another signer is refused', () => {
  const d = signDemand(terms, buyer)
  assert.is(reasonOf(() => decodeDemand(enc({ ...d, sellerCap: '999999999' }))), 'signature')
  // The epsilon is signed too: nobody on the way can raise what a buyer agreed to be charged.
  const priv = signDemand({ ...terms, epsilon: 500_000n }, buyer)
  assert.is(decodeDemand(encodeDemand(priv)).demand.epsilon, 500_000n)
  assert.is(reasonOf(() => decodeDemand(enc({ ...priv, epsilon: '1000000' }))), 'signature')
  const other = signDemand(terms, Wallet.createRandom())
  assert.is(reasonOf(() => decodeDemand(enc({ ...other, buyer: d.buyer }))), 'signature')
})

test('malformed and oversized demands are refused', () => {
  const d = signDemand(terms, buyer)
  assert.is(reasonOf(() => decodeDemand(new TextEncoder().encode('{nope'))), 'schema')
  assert.is(reasonOf(() => decodeDemand(enc({ ...d, extra: 1 }))), 'schema')
  assert.is(reasonOf(() => decodeDemand(enc({ ...d, nodes: 100 }))), 'schema')
  assert.is(reasonOf(() => decodeDemand(enc({ ...d, tag: 'a b' }))), 'schema')
  assert.is(reasonOf(() => decodeDemand(enc({ ...d, epsilon: (1n << 64n).toString() }))), 'schema', 'an epsilon over uint64')
  assert.is(reasonOf(() => decodeDemand(enc({ ...d, version: '1' }))), 'schema', 'a v1 demand (no epsilon)')
  assert.is(reasonOf(() => decodeDemand(new Uint8Array(MAX_DEMAND_BYTES + 1))), 'size')
})

const PEER = terms.buyerPeer
/** BDBC as the validator sees it: the (buyer, hash) pairs posted. */
const posted = new Set<string>()
const post = (d: Demand): Demand => { posted.add(`${d.buyer}/${decodeDemand(encodeDemand(d)).demandHash}`); return d }
const isPosted = async (b: string, h: string): Promise<boolean> => posted.has(`${b}/${h}`)
const reasonOfAsync = async (fn: () => Promise<unknown>): Promise<string> => {
  try { await fn() } catch (err) { assert.instance(err, DemandInvalidError); return (err as DemandInvalidError).reason }
  return 'accepted'
}

test('the validator: network, expiry, too far ahead, duplicates', async () => {
  const v = createDemandValidator({ chainId: 31337, dtmc: DTMC, now: () => NOW, isPosted })
  const d = post(signDemand(terms, buyer))
  assert.is(await v.validate({ from: PEER, data: encodeDemand(d) }), 'accept')
  assert.is(reasonOf(() => v.check(encodeDemand(d))), 'duplicate')
  assert.is(await v.validate({ from: PEER, data: encodeDemand(d) }), 'ignore', 'a second copy is stale, not a fault')
  assert.is(reasonOf(() => v.check(encodeDemand(signDemand({ ...terms, chainId: 1 }, buyer)))), 'network')
  assert.is(reasonOf(() => v.check(encodeDemand(signDemand({ ...terms, dtmc: '0x' + '00'.repeat(20) }, buyer)))), 'network')
  assert.is(reasonOf(() => v.check(encodeDemand(signDemand({ ...terms, expiresAt: NOW - 100 }, buyer)))), 'expired')
  assert.is(reasonOf(() => v.check(encodeDemand(signDemand({ ...terms, expiresAt: NOW + 100_000 }, buyer)))), 'too-far')
  assert.is(await v.validate({ from: PEER, data: new Uint8Array([1, 2, 3]) }), 'reject')
})

test('verdicts: late or repeated demands are ignored (no penalty), invalid ones rejected', async () => {
  const v = createDemandValidator({ chainId: 31337, dtmc: DTMC, now: () => NOW, isPosted })
  const verdict = async (d: unknown): Promise<string> => await v.validate({ from: PEER, data: d instanceof Uint8Array ? d : enc(d) })
  const late = post(signDemand({ ...terms, expiresAt: NOW - 100 }, buyer))
  assert.is(await verdict(encodeDemand(late)), 'ignore', 'expired on the way: an honest relay is not scored down')
  const fresh = post(signDemand(terms, buyer))
  assert.is(await verdict(encodeDemand(fresh)), 'accept')
  assert.is(await verdict(encodeDemand(fresh)), 'ignore', 'already seen')
  assert.is(await verdict({ ...post(signDemand(terms, buyer)), sellerCap: '7' }), 'reject', 'bad signature')
  assert.is(await verdict(encodeDemand(post(signDemand({ ...terms, chainId: 1 }, buyer)))), 'reject', 'another network')
  assert.is(await verdict(encodeDemand(post(signDemand({ ...terms, expiresAt: NOW + 100_000 }, buyer)))), 'reject', 'too far ahead')
  assert.is(await verdict(new Uint8Array(MAX_DEMAND_BYTES + 1)), 'reject', 'oversized')
  assert.is(await verdict({ nope: 1 }), 'reject', 'malformed')
  for (const [reason, expected] of Object.entries(DEMAND_VERDICTS)) assert.ok(expected === 'ignore' || expected === 'reject', reason)
})

test('the validator: a demand must be authored by its buyer peer and posted to BDBC', async () => {
  const v = createDemandValidator({ chainId: 31337, dtmc: DTMC, now: () => NOW, isPosted })
  assert.is(await v.validate({ from: '12D3KooWVictimVictimVictimVictimVictimVictimVictim', data: encodeDemand(post(signDemand(terms, buyer))) }), 'reject', 'names another peer')
  assert.is(await v.validate({ from: PEER, data: encodeDemand(signDemand(terms, buyer)) }), 'reject', 'not on BDBC')
  const other = Wallet.createRandom()
  const d = signDemand(terms, other)
  posted.add(`${buyer.address.toLowerCase()}/${decodeDemand(encodeDemand(d)).demandHash}`)
  assert.is(await v.validate({ from: PEER, data: encodeDemand(d) }), 'reject', 'posted by another account than the buyer')
  const unreadable = createDemandValidator({ chainId: 31337, dtmc: DTMC, now: () => NOW, isPosted: async () => { throw new Error('rpc down') } })
  assert.is(await unreadable.validate({ from: PEER, data: encodeDemand(post(signDemand(terms, buyer))) }), 'ignore', 'chain unreadable: nobody is penalised')
})

test('the validator: a buyer over its rate is ignored until the window moves on', async () => {
  let now = NOW
  const v = createDemandValidator({ chainId: 31337, dtmc: DTMC, now: () => now, isPosted, maxPerBuyer: 2 })
  const send = async (): Promise<string> => await v.validate({ from: PEER, data: encodeDemand(post(signDemand(terms, buyer))) })
  assert.equal([await send(), await send(), await send()], ['accept', 'accept', 'ignore'])
  assert.is(await v.validate({ from: PEER, data: encodeDemand(post(signDemand(terms, Wallet.createRandom()))) }), 'accept', 'another buyer has its own rate')
  now += DEMAND_RATE_WINDOW_SECONDS + 1
  assert.is(await send(), 'accept')
})

test('accepted: the demand validate accepted in exactly those bytes, nothing for others', async () => {
  const v = createDemandValidator({ chainId: 31337, dtmc: DTMC, now: () => NOW, isPosted })
  const d = post(signDemand(terms, buyer))
  const bytes = encodeDemand(d)
  assert.is(v.accepted(bytes), undefined, 'nothing before validation')
  assert.is(await v.validate({ from: PEER, data: bytes }), 'accept')
  assert.equal(v.accepted(bytes), decodeDemand(bytes), 'the accepted demand and its hash')
  assert.is(v.accepted(bytes.slice()), undefined, 'equal bytes in another array: decoded again by the caller')
  const notPosted = encodeDemand(signDemand(terms, buyer))
  assert.is(await v.validate({ from: PEER, data: notPosted }), 'reject')
  assert.is(v.accepted(notPosted), undefined, 'a refused demand is never handed on')
  assert.is(await v.validate({ from: PEER, data: bytes }), 'ignore', 'the same demand again: a duplicate')
})

test('verify: a demand that came by solicitation gets the same checks but the seen set', async () => {
  const v = createDemandValidator({ chainId: 31337, dtmc: DTMC, now: () => NOW, isPosted })
  const d = post(signDemand(terms, buyer))
  assert.match(await v.verify(d, PEER), /^0x[0-9a-f]{64}$/)
  assert.match(await v.verify(d, PEER), /^0x[0-9a-f]{64}$/, 'twice is fine: solicitations repeat a gossiped demand')
  assert.is(await reasonOfAsync(async () => await v.verify({ ...d, sellerCap: 1n }, PEER)), 'signature')
  assert.is(await reasonOfAsync(async () => await v.verify(post(signDemand({ ...terms, expiresAt: NOW - 100 }, buyer)), PEER)), 'expired')
  assert.is(await reasonOfAsync(async () => await v.verify(post(signDemand({ ...terms, chainId: 5 }, buyer)), PEER)), 'network')
  assert.is(await reasonOfAsync(async () => await v.verify(d, '12D3KooWSomeoneElseSomeoneElseSomeoneElse')), 'author', 'solicited by another peer than the buyer\'s')
  assert.is(await reasonOfAsync(async () => await v.verify(signDemand(terms, buyer), PEER)), 'not-posted')
})

test('the seen set is bounded', async () => {
  const v = createDemandValidator({ chainId: 31337, dtmc: DTMC, now: () => NOW, maxSeen: 2, isPosted })
  const ds = [1, 2, 3].map(() => post(signDemand(terms, buyer)))
  for (const d of ds) assert.is(await v.validate({ from: PEER, data: encodeDemand(d) }), 'accept')
  assert.is(await v.validate({ from: PEER, data: encodeDemand(ds[2]) }), 'ignore', 'recent id still remembered')
  assert.is(await v.validate({ from: PEER, data: encodeDemand(ds[0]) }), 'accept', 'oldest id forgotten beyond the bound')
})

test.run()
