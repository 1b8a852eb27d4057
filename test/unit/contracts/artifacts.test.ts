// The committed artifacts in contracts/artifacts must be what the pinned solc makes of the sources.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { staleArtifacts, loadArtifact } from '../../../contracts/tools/compile.ts'

test('every artifact matches a fresh compile of its source (node contracts/tools/compile.ts rewrites them)', () => {
  assert.equal(staleArtifacts(), [])
})

test('the settlement contracts have ABI and bytecode', () => {
  for (const name of ['CISC', 'BDBC', 'DTMC']) {
    const a = loadArtifact(name)
    assert.ok(a.abi.length > 0, name)
    assert.ok(a.bytecode.length > 2, name)
    // EIP-170: deployable runtime code is at most 24576 bytes
    assert.ok((a.deployedBytecode.length - 2) / 2 <= 24_576, `${name} runtime code is too large`)
  }
})

test.run()
