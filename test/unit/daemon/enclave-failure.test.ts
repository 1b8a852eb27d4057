// How the trusted node takes an enclave failure (enclaveFailureOf): a closed or unresponsive enclave is lost and
// reopened on its sealed state; a changed build (EnclaveBuildChangedError, test/integration/enclave/idle-stop.test.ts)
// is never reopened: the node's registered measurement is the old build's.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { enclaveFailureOf } from '../../../daemon/roles/trusted-node/index.ts'
import { EnclaveBuildChangedError, EnclaveClosedError, EnclaveTimeoutError, TaskStateError, deserializeError } from '../../../enclave/index.ts'

test('a changed build is not a lost enclave', () => {
  assert.is(enclaveFailureOf(new EnclaveBuildChangedError('changed')), 'build-changed')
  assert.is(enclaveFailureOf(deserializeError({ name: 'EnclaveBuildChangedError', code: 'ERR_ENCLAVE_BUILD_CHANGED', message: 'changed' })), 'build-changed')
  assert.not.ok(new EnclaveBuildChangedError('changed') instanceof EnclaveClosedError)
})

test('a closed or unresponsive enclave is lost; a refusal is neither', () => {
  assert.is(enclaveFailureOf(new EnclaveClosedError('closed')), 'lost')
  assert.is(enclaveFailureOf(new EnclaveTimeoutError('late')), 'lost')
  assert.is(enclaveFailureOf(new TaskStateError('not now')), undefined)
  assert.is(enclaveFailureOf(new Error('other')), undefined)
})

test.run()
