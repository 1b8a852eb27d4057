// docs/protocol.md is enough to build a client from: its examples are checked against the code. Every
// `json wire:NAME` block decodes with the code's schema NAME (strict: an unknown or missing field fails),
// every message schema of the p2p protocols has an example, the signed examples verify against the
// digests the page gives and recover to the signer it names, the demand digest's ABI words are the
// code's, every `NAME = keccak256("...")` tag line is the code's constant, the digest test vectors
// are what contracts/formats.ts computes, and every stream protocol's id (name and version, which a
// changed wire format must bump) is the one this page and docs/p2p.md give.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { keccak256, toUtf8Bytes } from 'ethers'
import type { Schema } from '../../../p2p/messages/index.ts'
import { Refused } from '../../../p2p/messages/exchange.ts'
import { DemandSchema, DEMAND_DIGEST_TYPES, DEMAND_TAG, demandHashOf, verifyDemandSignature } from '../../../p2p/demand/demand.ts'
import { Offer, OfferAck, Solicit } from '../../../p2p/offer/schema.ts'
import { OFFER_TAG, offerDigestOf, verifyOfferSignature } from '../../../p2p/offer/signature.ts'
import { Attest, QuoteReply, Code, CodeAck } from '../../../p2p/attest/schema.ts'
import { DataAck, DataDone, DataOpen, DataStatus } from '../../../p2p/data/schema.ts'
import { ResultRequest, ResultAck, ResultHeader, ResultAcked } from '../../../p2p/result/schema.ts'
import { RESULT_ACK_TAG, RESULT_REQUEST_TAG, resultMessageDigestOf, resultMessageSigner } from '../../../p2p/result/request.ts'
import { EchoRequest, EchoResponse } from '../../../p2p/echo/schema.ts'
import * as offerConstants from '../../../p2p/offer/constants.ts'
import * as attestConstants from '../../../p2p/attest/constants.ts'
import * as dataConstants from '../../../p2p/data/constants.ts'
import * as resultConstants from '../../../p2p/result/constants.ts'
import * as echoConstants from '../../../p2p/echo/constants.ts'
import { DEFAULT_PROTOCOL_PREFIX } from '../../../p2p/constants.ts'
import {
  CHUNK_TAG, CODE_TAG, DATA_KEY_TAG, QUOTE_TAG, RECEIPT_ACK_TAG, RECEIPT_TAG, RESULT_TAG, chunkDigestOf, chunkHashOf, codeAuthDigestOf, dataKeyDigestOf,
  inputHashOf, networkDomainOf, quoteDigestOf, receiptAckDigestOf, receiptDigestOf, reportDataOf, resultCommitmentOf, resultDigestOf,
  resultHashOf, taskIdOf, tradeIdOf
} from '../../../contracts/formats.ts'

const DOC = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8')
const P2P_DOC = readFileSync(new URL('../../../docs/p2p.md', import.meta.url), 'utf8')

/** Every stream protocol's constants: its id is `${prefix}/${PROTOCOL_NAME}/${PROTOCOL_VERSION}` (host.protocolId). */
const PROTOCOLS = [offerConstants, attestConstants, dataConstants, resultConstants, echoConstants]

/** Every JSON message of the p2p layer, by the name the page gives it. Solicit is a demand in an envelope. */
const SCHEMAS: Record<string, Schema<unknown>> = {
  Refused, Demand: DemandSchema, Offer, OfferAck, Attest, QuoteReply, Code, CodeAck, DataOpen, DataStatus, DataDone, DataAck,
  ResultRequest, ResultAck, ResultHeader, ResultAcked, EchoRequest, EchoResponse
}

/** Every domain tag of a signed digest, by its name on the page. */
const TAGS: Record<string, string> = {
  DEMAND_TAG, OFFER_TAG, QUOTE_TAG, CODE_TAG, RESULT_TAG, DATA_KEY_TAG, CHUNK_TAG, RECEIPT_TAG, RECEIPT_ACK_TAG, RESULT_REQUEST_TAG, RESULT_ACK_TAG
}

const EXAMPLE_PEER = '12D3KooWGzh8bKQBUAvNmNNM2vPwZ3R5EucR1WfZ3TgDfbBqfxV9'

function examples (): Array<{ name: string, value: any }> {
  return [...DOC.matchAll(/```json wire:(\w+)\n([\s\S]*?)```/g)].map(m => ({ name: m[1], value: JSON.parse(m[2]) }))
}

function exampleOf (name: string, pick: (v: any) => boolean = () => true): any {
  const e = examples().find(x => x.name === name && pick(x.value))
  assert.ok(e !== undefined, `docs/protocol.md has a ${name} example`)
  return e.value
}

/** The hex the page gives after `label` (e.g. "its `demandHash` is"). */
function documented (label: string): string {
  const m = new RegExp(`${label}\\s*\`(0x[0-9a-f]{64})\``).exec(DOC)
  assert.ok(m !== null, `docs/protocol.md states ${label}`)
  return m[1]
}

test('every documented example decodes with the code\'s schema of its name, unchanged', () => {
  const all = examples()
  assert.ok(all.length >= Object.keys(SCHEMAS).length)
  for (const { name, value } of all) {
    const schema = SCHEMAS[name]
    assert.ok(schema !== undefined, `wire:${name} names a message of the code`)
    const decoded = schema(value)
    // What the page shows is what the code sends: lowercase hex, decimal strings for big integers.
    assert.equal(JSON.parse(JSON.stringify(decoded, (_k, v: unknown) => typeof v === 'bigint' ? v.toString() : v)), value, name)
  }
})

test('every message of every protocol has a documented example; the schemas refuse an unknown field, as the page says', () => {
  const named = new Set(examples().map(e => e.name))
  for (const name of Object.keys(SCHEMAS)) {
    assert.ok(named.has(name), `docs/protocol.md shows a ${name}`)
    const value = exampleOf(name)
    assert.throws(() => SCHEMAS[name]({ ...value, extra: 1 }), undefined, `${name} refuses an unknown field`)
  }
  // Solicit is the demand in an envelope, as documented.
  assert.ok(DOC.includes('{ "type": "solicit", "demand": <the signed demand> }'))
  assert.ok(Solicit({ type: 'solicit', demand: exampleOf('Demand') }) !== undefined)
})

test('the demand example is signed by its buyer over the documented demandHash, whose ABI words are the code\'s', () => {
  const demand = exampleOf('Demand')
  const decoded = DemandSchema(demand)
  const hash = verifyDemandSignature(decoded)
  assert.is(hash, documented('its `demandHash` is'))
  const { signature: _s, ...unsigned } = decoded
  assert.is(demandHashOf(unsigned), hash)
  // The digest as the page writes it: the types of abi.encode(...), in order.
  const block = /demandHash = keccak256\(abi\.encode\(([\s\S]*?)\)\)\n/.exec(DOC)
  assert.ok(block !== null)
  const types = block[1].split(',').map(w => w.trim().split(/\s+/)[0])
  assert.equal(types, [...DEMAND_DIGEST_TYPES])
})

test('the offer examples verify for the demand\'s network and the documented peer; the seller\'s digest is the documented one', () => {
  const demand = exampleOf('Demand')
  const scope = { chainId: demand.chainId, dtmc: demand.dtmc, peerId: EXAMPLE_PEER }
  assert.ok(DOC.includes(`peer id\n\`${EXAMPLE_PEER}\``) || DOC.includes(`peer id \`${EXAMPLE_PEER}\``))
  const seller = Offer(exampleOf('Offer', v => v.kind === 'seller'))
  verifyOfferSignature(seller, scope)
  const { signature: _s, ...unsigned } = seller
  assert.is(offerDigestOf(unsigned, scope), documented('its `offerDigest` is'))
  verifyOfferSignature(Offer(exampleOf('Offer', v => v.kind === 'node')), scope)
  // Another peer or network: the same offer does not verify.
  assert.throws(() => verifyOfferSignature(seller, { ...scope, peerId: EXAMPLE_PEER.replace('9', '8') }))
  assert.throws(() => verifyOfferSignature(seller, { ...scope, chainId: 1 }))
})

test('the result request example is signed by the demand\'s buyer over the documented digest', () => {
  const demand = exampleOf('Demand')
  const domain = { chainId: demand.chainId, dtmc: demand.dtmc }
  const request = ResultRequest(exampleOf('ResultRequest'))
  const { signature: _s, ...unsigned } = request
  assert.is(resultMessageDigestOf(unsigned, domain), documented('its digest is'))
  assert.is(resultMessageSigner(request, domain, request.timestamp * 1000).toLowerCase(), demand.buyer)
})

test('every tag line of the page is the code\'s constant, and every constant is on the page', () => {
  const lines = [...DOC.matchAll(/([A-Z_]+_TAG)\s*=\s*keccak256\("([^"]+)"\)/g)]
  const seen = new Set<string>()
  for (const [, name, text] of lines) {
    assert.ok(TAGS[name] !== undefined, `${name} is a tag of the code`)
    assert.is(keccak256(toUtf8Bytes(text)), TAGS[name], name)
    seen.add(name)
  }
  assert.equal([...seen].sort(), Object.keys(TAGS).sort())
})

test('every stream protocol has its section on the page under the id the code serves, and docs/p2p.md lists that id', () => {
  const sections = [...DOC.matchAll(/^### `(\/[^`]+)`:/gm)].map(m => m[1])
  const ids = PROTOCOLS.map(c => `${DEFAULT_PROTOCOL_PREFIX}/${c.PROTOCOL_NAME}/${c.PROTOCOL_VERSION}`)
  assert.equal(sections.sort(), [...ids].sort(), 'the section headings of docs/protocol.md are the served protocol ids')
  const table = P2P_DOC.slice(P2P_DOC.indexOf('## Protocol ids'), P2P_DOC.indexOf('## Gossip topics'))
  for (const id of ids) assert.ok(table.includes(`\`${id}\``), `docs/p2p.md "Protocol ids" lists ${id}`)
  // A version no longer served is not named as a protocol id outside the history of a section.
  for (const c of PROTOCOLS) {
    for (let v = 1; v < Number(c.PROTOCOL_VERSION); v++) assert.not.ok(table.includes(`/${c.PROTOCOL_NAME}/${v}\``), `docs/p2p.md lists /${c.PROTOCOL_NAME}/${v}, no longer served`)
  }
})

test('the test vectors of the digests are what contracts/formats.ts computes from the documented inputs', () => {
  const block = /```text vectors\n([\s\S]*?)```/.exec(DOC)
  assert.ok(block !== null, 'docs/protocol.md has the test vectors')
  const doc = Object.fromEntries([...block[1].matchAll(/^(\w+)\s*= (0x[0-9a-f]{64})$/gm)].map(m => [m[1], m[2]]))
  const domain = networkDomainOf({ chainId: 31337, contracts: { DTMC: '0x5fbdb2315678afecb367f032d93f642f64180aa3' } })
  const b32 = (byte: string): string => '0x' + byte.repeat(32)
  const [salt, codeHash, nonce, measurement, commitment] = ['5a', 'c0', '4e', 'ee', '3c'].map(b32)
  const enclave = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8'
  const tradeId = tradeIdOf('0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266', salt)
  const taskId = taskIdOf(tradeId, codeHash, enclave)
  const reportData = reportDataOf(enclave, taskId, tradeId, codeHash, nonce, '0x90f79bf6eb2c4f870365e785982e1f101e93b906')
  const inputHash = inputHashOf([commitment])
  const resultHash = resultHashOf(b32('99'), toUtf8Bytes('42'))
  const resultDigest = resultDigestOf(domain, { tradeId, taskId, inputHash, resultHash, resultSize: 2n, status: 0 })
  const receiptDigest = receiptDigestOf(domain, tradeId, taskId, 0, commitment, '0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc')
  const computed = {
    tradeId,
    taskId,
    reportData,
    quoteDigest: quoteDigestOf(domain, measurement, reportData),
    codeAuthDigest: codeAuthDigestOf(domain, taskId, keccak256('0x0102030405')),
    inputHash,
    resultHash,
    resultDigest,
    commitment: resultCommitmentOf(resultDigest, 1, nonce),
    dataKeyDigest: dataKeyDigestOf(domain, taskId, 0, commitment, keccak256('0x0a0b0c')),
    chunkDigest: chunkDigestOf(domain, taskId, 0, keccak256('0x0a0b0c'), chunkHashOf(Uint8Array.of(1, 2, 3))),
    receiptDigest,
    ackDigest: receiptAckDigestOf(receiptDigest)
  }
  assert.equal(doc, computed)
})

test.run()
