// Chain requests of idle daemons (issue 12: ~490 eth_blockNumber/s from 50 daemons on one anvil): a local
// testnet (anvil, relay, one buyer, one seller, one node: daemons as processes, roles on) is left idle
// for --seconds after a --settle period, and the JSON-RPC methods anvil answered meanwhile are counted
// from its log (anvil writes each method's name on a line of its own). Reported: each method's calls per
// second per daemon. --block-time N mines a block every N s (default: none, a block per transaction).
//
//   node_modules/.bin/node bench/network/idle-polls.ts [--seconds 20] [--settle 10] [--block-time N]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { LocalTestnet } from '../../daemon/tools/testnet.ts'

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    settle: { type: 'string', default: '10' },
    'block-time': { type: 'string' }
  }
})
const seconds = Number(flags.seconds)
const settle = Number(flags.settle)
const blockTime = flags['block-time'] !== undefined ? Number(flags['block-time']) : undefined

/** Calls per JSON-RPC method among anvil's log lines (a line that is a method name alone). */
function methodCounts (lines: string[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const line of lines) {
    const m = /^\s*((?:eth|net|anvil|evm|web3|debug)_[A-Za-z]+)\s*$/.exec(line)
    if (m !== null) counts.set(m[1], (counts.get(m[1]) ?? 0) + 1)
  }
  return counts
}

const dir = mkdtempSync(join(tmpdir(), 'sdte-idle-polls-'))
let net: LocalTestnet | undefined
try {
  net = await LocalTestnet.start({ dir, buyers: 1, sellers: 1, nodes: 1, blockTime })
  const daemons = net.daemons.length
  const log = join(dir, 'devnet', 'anvil.log')
  await sleep(settle * 1000)
  const from = readFileSync(log, 'utf8').split('\n').length
  const load = loadavg()[0].toFixed(2)
  await sleep(seconds * 1000)
  const lines = readFileSync(log, 'utf8').split('\n').slice(from)
  const counts = [...methodCounts(lines)].sort((a, b) => b[1] - a[1])
  console.log(`${daemons} idle daemons, ${seconds} s after ${settle} s, block time ${blockTime ?? 'none (automine)'}, load ${load} -> ${loadavg()[0].toFixed(2)}`)
  for (const [method, n] of counts) console.log(`${method}\t${n}\t${(n / seconds / daemons).toFixed(2)}/s per daemon`)
  if (counts.length === 0) console.log('no calls')
} finally {
  await net?.stop()
  rmSync(dir, { recursive: true, force: true })
}
