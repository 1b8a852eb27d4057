// The DHT keys SDTE peers announce and look up: `sdte:<kind>:<value>` (the host checks the form,
// DHT_KEY_PATTERN in constants.ts). Built only here, so an announcer and a finder cannot disagree.

/** Sellers of a dataset announce `sdte:dataset:<tag>` (tag: TAG_PATTERN of p2p/demand). */
export function datasetKey (tag: string): string {
  return `sdte:dataset:${tag}`
}

/** Nodes running an enclave build announce `sdte:node:<measurement>` (0x-prefixed lowercase hex). */
export function enclaveKey (measurement: string): string {
  return `sdte:node:${measurement.toLowerCase()}`
}
