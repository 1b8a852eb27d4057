// Attack (on a seller's data, by anyone who reads CISC): a listed dataset's commitment is public, and it was the plain
// SHA-256 of the file. For data of little entropy (a small survey, a file of a known layout with a few unknown values)
// anyone could hash the candidates and confirm which one the seller holds, without a trade, an enclave or a payment.
// The defence: the commitment is SHA-256(salt ‖ data) with a 32-byte salt the seller derives from its account key
// (and the data), which only the enclaves it delivers to learn, inside the data key wrapped to their task keys.
//
// Real parts: anvil and a seller daemon as a separate process (seller_addDataset lists the file in CISC); the attacker
// reads the offer from the chain with a client of its own and tries every candidate file.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getBytes, toBeHex, toUtf8Bytes, zeroPadValue } from 'ethers'
import { ChainClient } from '../../contracts/index.ts'
import { attackTestnet } from '../helpers/attacker.ts'

const bench = attackTestnet(test, 'commitment-guess', { buyers: 0, sellers: 1, nodes: 0 })

/** A survey's whole answer sheet: one of 2^8 files, told apart only by eight yes/no answers. */
function answerSheet (answers: number): Uint8Array {
  const rows = Array.from({ length: 8 }, (_, q) => `q${q + 1},${((answers >> q) & 1) === 1 ? 'yes' : 'no'}`)
  return new TextEncoder().encode(`question,answer\n${rows.join('\n')}\n`)
}

test('the public commitment of a small dataset does not confirm a guess of its content', async () => {
  const seller = bench.net.sellers[0]
  const secretAnswers = 0b10110010
  const path = join(seller.datadir, 'survey.csv')
  writeFileSync(path, answerSheet(secretAnswers))
  const listed = await seller.rpc.call<{ datasetId: string, commitment: string }>('seller_addDataset', { path, tag: 'survey', unitPrice: '1', policy: { mode: 'any' } })

  const reader = await ChainClient.connect({ network: bench.net.network })
  try {
    const offer = await reader.cisc.offer(BigInt(listed.datasetId))
    assert.is(offer.commitment.toLowerCase(), listed.commitment.toLowerCase(), 'the attacker reads the listed commitment from CISC')
    // The guesses: each candidate file hashed alone, and after each public fact of the listing a salt could have been
    // made of (the seller's account, its offer id, the tag): a salt must be a secret to hide the data.
    const publicPrefixes = [new Uint8Array(0), getBytes(offer.seller), getBytes(zeroPadValue(toBeHex(BigInt(listed.datasetId)), 32)), toUtf8Bytes('survey')]
    const sha256 = (prefix: Uint8Array, b: Uint8Array): string => '0x' + createHash('sha256').update(prefix).update(b).digest('hex')
    const confirmed = publicPrefixes.flatMap(prefix => Array.from({ length: 256 }, (_, a) => a).filter(a => sha256(prefix, answerSheet(a)) === offer.commitment.toLowerCase()))
    assert.equal(confirmed, [], `the commitment confirmed the seller's answers ${confirmed.map(a => a.toString(2).padStart(8, '0')).join(', ')} by hashing`)
  } finally {
    reader.close()
  }
})

test.run()
