// Where each demand's time went on each daemon of a bench/network run made with `--debug sdte:demand --keep DIR`:
// from the buyer's `demand gossiped` to the daemon's `demand validating` (the gossip's arrival, its decode and
// signature check), from there to `demand received` (the verdict and the hand-over to the roles), and how the
// BDBC check answered (`posted check`: known from a block scanned ahead, after a scan under way, or a chain read).
//
//   node bench/network/demand-path.ts DIR [--each]
//
// DIR is the --keep directory; --each lists every daemon of every demand, slowest last.
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { median } from '../trade/daemon.ts'

const { values: flags, positionals } = parseArgs({ options: { each: { type: 'boolean', default: false } }, allowPositionals: true })
if (positionals.length !== 1) throw new Error('usage: node bench/network/demand-path.ts DIR [--each]')
const net = join(positionals[0], 'net')

interface Line { t: number, msg: string, ctx: Record<string, unknown> }
/** `<iso time> <level> <ns> <msg> <json>` lines of one daemon's log. */
function lines (file: string): Line[] {
  const out: Line[] = []
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\S+) (\w+)\s+(\S+) (.*?) (\{.*\})$/.exec(l)
    if (m === null) continue
    try { out.push({ t: Date.parse(m[1]), msg: m[4], ctx: JSON.parse(m[5]) }) } catch {}
  }
  return out
}

const logs = new Map<string, Line[]>()
for (const name of readdirSync(net)) {
  try { logs.set(name, lines(join(net, name, 'daemon.log'))) } catch {}
}
const buyer = [...logs.keys()].find(n => n.startsWith('buyer'))
if (buyer === undefined) throw new Error(`no buyer's log under ${net}`)

for (const g of logs.get(buyer)!.filter(x => x.msg === 'demand gossiped')) {
  const id = g.ctx.demandId
  const rows: Array<{ name: string, arrival: number, verdict: number, total: number, how: string, checkMs: number }> = []
  for (const [name, log] of logs) {
    if (name === buyer) continue
    const v = log.findIndex(x => x.msg === 'demand validating' && x.ctx.demandId === id)
    const r = log.find(x => x.msg === 'demand received' && x.ctx.demandId === id)
    if (v < 0 || r === undefined) continue
    const check = log.slice(v).find(x => x.msg === 'posted check')
    rows.push({ name, arrival: log[v].t - g.t, verdict: r.t - log[v].t, total: r.t - g.t, how: String(check?.ctx.how), checkMs: Number(check?.ctx.ms ?? 0) })
  }
  rows.sort((a, b) => a.total - b.total)
  const of = logs.size - 1
  const hows: Record<string, number> = {}
  for (const r of rows) hows[r.how] = (hows[r.how] ?? 0) + 1
  const p95 = rows.length >= Math.ceil(0.95 * of) ? rows[Math.ceil(0.95 * of) - 1].total : null
  console.log(`${new Date(g.t).toISOString()} demand ${String(id).slice(0, 10)}: ${rows.length}/${of} daemons, ${rows.filter(r => r.total <= 1000).length} within 1 s, ` +
    `95 % ${p95 ?? '–'} ms; arrival median ${median(rows.map(r => r.arrival))} ms (max ${Math.max(...rows.map(r => r.arrival))}), ` +
    `verdict median ${median(rows.map(r => r.verdict))} ms (max ${Math.max(...rows.map(r => r.verdict))}); posted check ${JSON.stringify(hows)}`)
  if (flags.each) for (const r of rows) console.log(`  ${r.name}: ${r.total} ms = arrival ${r.arrival} + verdict ${r.verdict} (posted check ${r.how}, ${r.checkMs} ms)`)
}
