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
    const sha256 = (b: Uint8Array): string => '0x' + createHash('sha256').update(b).digest('hex')
    const confirmed = Array.from({ length: 256 }, (_, a) => a).filter(a => sha256(answerSheet(a)) === offer.commitment.toLowerCase())
    assert.equal(confirmed, [], `the commitment confirmed the seller's answers ${confirmed.map(a => a.toString(2).padStart(8, '0')).join(', ')} by plain hashing`)
  } finally {
    reader.close()
  }
})

test.run()
