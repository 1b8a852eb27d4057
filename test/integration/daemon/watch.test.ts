// `sdte watch` against a real daemon (in this process, relay role, no chain) whose store holds a
// buyer's and a seller's record of one trade: the watch ends when every record is at its role's
// end. `finalized` ends a seller's part but not a buyer's, which goes on to `delivered`.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveOptions } from '../../../config/options.ts'
import { SdteDaemon } from '../../../daemon/daemon.ts'
import { CLI } from '../../../daemon/tools/child-daemons.ts'

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

test.run()
