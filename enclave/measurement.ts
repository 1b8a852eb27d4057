// The measurement of this enclave build: what a verifier (buyer, seller, DTMC) accepts.
//
//   measurement = keccak256(utf8(JSON.stringify({
//     tag: "SDTE.Measurement.v1",
//     files: [[path, keccak256(file bytes)], ...],   // ENCLAVE_CODE_FILES, in this order
//     evm: evmConfiguration(),                        // engine version, hardfork, pricing, caps, precompiles
//     variant: ""                                     // non-empty only for test builds
//   })))
//
// The worker computes it at start from the files it actually loads, the way SGX measures the pages
// it loads (MRENCLAVE). The host can compute the same value to publish it (network.json, DTMC).
import { readFileSync } from 'node:fs'
import { keccak256 } from 'ethers/crypto'
import { toUtf8Bytes } from 'ethers/utils'
import { MEASUREMENT_TAG } from './constants.ts'
import { evmConfiguration } from './evm.ts'

/** The enclave's own code, relative to the repository root: everything the worker runs of ours. */
export const ENCLAVE_CODE_FILES = [
  'enclave/worker.ts',
  'enclave/messages.ts',
  'enclave/crypto.ts',
  'enclave/evm.ts',
  'enclave/runs.ts',
  'enclave/runner.ts',
  'enclave/precompiles.ts',
  'enclave/private.ts',
  'enclave/noise.ts',
  'enclave/privacy-terms.ts',
  'enclave/constants.ts',
  'enclave/errors.ts',
  'enclave/measurement.ts',
  'contracts/formats.ts',
  'config/errors.ts'
] as const

const ROOT = new URL('..', import.meta.url)

export function computeMeasurement (variant = ''): string {
  const files = ENCLAVE_CODE_FILES.map(path => [path, keccak256(readFileSync(new URL(path, ROOT)))])
  const doc = { tag: MEASUREMENT_TAG, files, evm: evmConfiguration(), variant }
  return keccak256(toUtf8Bytes(JSON.stringify(doc))).toLowerCase()
}
