// `sdte watch` against a real daemon (in this process, relay role, no chain) whose store holds a
// buyer's and a seller's record of one trade: the watch ends when every record is at its role's
// end. `finalized` ends a seller's part but not a buyer's, which goes on to `delivered`; a refunded
// or failed trade ends the watch with exit code 1.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveOptions } from '../../../config/options.ts'
import { SdteDaemon } from '../../../daemon/daemon.ts'
import { CLI } from '../../../daemon/tools/child-daemons.ts'

/** The command as an operator runs it. */
const SDTE = new URL('../../../bin/sdte', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'sdte-watch-'))
const TRADE = '0x' + '7a'.repeat(32)
let daemon: SdteDaemon

test.before(async () => {
  daemon = new SdteDaemon(resolveOptions(dir, { roles: ['relay'], keys: { scryptN: 1024 } }, {}))
  await daemon.start()
})

test.after(async () => {
  await daemon?.stop()
  rmSync(dir, { recursive: true, force: true })
})

test('a buyer at finalized is watched on to delivered; a seller at finalized is at its end', async () => {
  const seller = await daemon.trades.create('seller', TRADE, 'escrowed', {})
  await daemon.trades.transition(seller, 'finalized', { note: 'paid' })
  let buyer = await daemon.trades.create('buyer', TRADE, 'demanded', {})
  buyer = await daemon.trades.transition(buyer, 'finalized', { note: 'majority' })

  const child = spawn(process.execPath, [CLI, 'watch', '--datadir', dir, '--interval', '100', TRADE], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const ended = new Promise<number | null>(resolve => child.on('close', resolve))
  // The first poll prints the timelines; with both records finalized, a watch that took
  // `finalized` for the buyer's end would stop right there.
  await new Promise<void>(resolve => child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString()
    if (/buyer finalized/.test(stdout) && /seller finalized/.test(stdout)) resolve()
  }))
  await daemon.trades.transition(buyer, 'delivered', { note: 'result checked' })
  assert.is(await ended, 0, stderr)
  assert.match(stdout, /buyer delivered: result checked\n/)
  assert.match(stdout, /buyer: delivered\n/)
  assert.match(stdout, /seller: finalized\n/)
  assert.not.match(stdout, /buyer: finalized/)
})

test('a refunded trade: the watch prints each state as it happens, then exits 1 (text and --json)', async () => {
  const REFUNDED = '0x' + '7b'.repeat(32)
  const buyer = await daemon.trades.create('buyer', REFUNDED, 'demanded', {})
  const child = spawn(SDTE, ['watch', '--datadir', dir, '--interval', '100', REFUNDED], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const ended = new Promise<number | null>(resolve => child.on('close', resolve))
  // Printed while the trade is still going, not at its end.
  await new Promise<void>(resolve => child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString()
    if (/buyer demanded/.test(stdout)) resolve()
  }))
  const escrowed = await daemon.trades.transition(buyer, 'escrowed', {})
  await daemon.trades.transition(escrowed, 'refunded', { reason: 'no result by the deadline' })
  assert.is(await ended, 1, stderr)
  assert.match(stdout, /buyer escrowed\n/)
  assert.match(stdout, /buyer: refunded \(no result by the deadline\)\n$/)

  const json = await new Promise<{ code: number | null, stdout: string }>(resolve => {
    const c = spawn(SDTE, ['watch', '--json', '--datadir', dir, REFUNDED], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    c.stdout.on('data', (d: Buffer) => { out += d.toString() })
    c.on('close', code => resolve({ code, stdout: out }))
  })
  assert.is(json.code, 1)
  const events = json.stdout.trimEnd().split('\n').map(l => JSON.parse(l))
  assert.equal(events.filter(e => e.event === 'state').map(e => e.state), ['demanded', 'escrowed', 'refunded'])
  assert.equal(events.at(-1), { event: 'end', role: 'buyer', state: 'refunded', reason: 'no result by the deadline' })
})

test.run()
