// The chain client's record of transactions signed again in another's place after a reorganisation
// (contracts/client.ts ReplacedTransactions): a review found that a reorganisation back and forth can sign
// the bytes of an earlier transaction again, and the walk from old to new hash then looped for ever.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ReplacedTransactions } from '../../../contracts/client.ts'

test('a replacement chain leads to its newest transaction', () => {
  const r = new ReplacedTransactions()
  assert.is(r.current('0xa'), '0xa', 'never replaced: itself')
  r.record('0xa', '0xb')
  r.record('0xb', '0xc')
  assert.is(r.current('0xa'), '0xc')
  assert.is(r.current('0xb'), '0xc')
  assert.is(r.current('0xc'), '0xc')
})

test('signed back to the very bytes it started from: the walk ends, at the transaction signed last', () => {
  const r = new ReplacedTransactions()
  r.record('0xa', '0xb') // the trade opened again with other terms: signed again
  r.record('0xb', '0xa') // and back: the same calldata, gas and fees, so the same hash as the first
  assert.is(r.current('0xa'), '0xa')
  assert.is(r.current('0xb'), '0xa')
  r.record('0xa', '0xa') // the same bytes broadcast again
  assert.is(r.current('0xa'), '0xa')
})

test.run()
