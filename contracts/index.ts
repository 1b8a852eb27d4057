// The contracts part as the rest of SDTE sees it: the chain client over CISC, BDBC and DTMC (built from
// the committed artifacts), the formats the contracts and the enclave share (quotes, results,
// digests), the network file, and the two devnet helpers a daemon on a devnet uses. See
// docs/contracts.md. The tooling (compile, deploy, devnet, anvil) is in contracts/tools/ and is not
// exported here: the running daemon never loads it.
export * from './client.ts'
export * from './formats.ts'
export * from './network.ts'
export * from './devnet-accounts.ts'
