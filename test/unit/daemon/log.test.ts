// The log pipeline: human and JSON lines with the redaction kept, libp2p's debug-style lines through
// our loggers (levels, namespace patterns), and the log file rotating at its size bound.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { configureLogging, componentLogger, logger } from '../../../daemon/log.ts'
import { RotatingLogFile } from '../../../daemon/log-file.ts'
import { libp2pLogger, renderLibp2pLine } from '../../../p2p/host/logger.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'

const dir = mkdtempSync(join(tmpdir(), 'sdte-log-'))
let lines: string[] = []

test.before.each(() => {
  lines = []
  configureLogging({ level: 'info', debug: '', format: 'human', sink: (l) => { lines.push(l) }, file: null })
})

test.after(() => {
  configureLogging({ file: null, sink: (l) => { process.stderr.write(l + '\n') } })
  rmSync(dir, { recursive: true, force: true })
})

test('json lines: one object a line, the line\'s own fields first and kept, secrets redacted', () => {
  configureLogging({ format: 'json' })
  logger('sdte:test').info('hello', { tradeId: '0x01', privateKey: '0xsecret', level: 'not mine', size: 3n })
  assert.is(lines.length, 1)
  const o = JSON.parse(lines[0]) as Record<string, unknown>
  assert.equal(Object.keys(o).slice(0, 4), ['time', 'level', 'ns', 'msg'])
  assert.is(o.level, 'info')
  assert.is(o.ns, 'sdte:test')
  assert.is(o.msg, 'hello')
  assert.is(o.tradeId, '0x01')
  assert.is(o.privateKey, '[redacted]')
  assert.is(o.size, '3')
  assert.not.ok(lines[0].includes('0xsecret'))
})

test('human lines keep their format and the redaction', () => {
  logger('sdte:test').warn('careful', { password: 'hunter2', peer: 'x' })
  assert.match(lines[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z warn  sdte:test careful \{"password":"\[redacted\]","peer":"x"\}$/)
})

test('libp2p lines go through our loggers: debug level, shown only when their namespace is asked for', () => {
  const lp = libp2pLogger(componentLogger)
  const log = lp.forComponent('libp2p:tcp')
  log('dialing %s', 'somewhere')
  log.error('dial failed %e', new Error('refused'))
  assert.is(log.enabled, false)
  assert.is(lines.length, 0)
  configureLogging({ debug: 'libp2p:*' })
  assert.is(log.enabled, true)
  log('dialing %s', 'somewhere')
  log.newScope('listener')('closed')
  log.trace('not at debug')
  assert.is(lines.length, 2)
  assert.match(lines[0], / debug libp2p:tcp dialing somewhere$/)
  assert.match(lines[1], / debug libp2p:tcp:listener closed$/)
  configureLogging({ format: 'json' })
  log('%p at %a', peerIdFromString('12D3KooWJwhT1nYMPVywsHd6yGKv75tryF7r7kCW9Dpq6rRZEfyK'), multiaddr('/ip4/127.0.0.1/tcp/1'))
  assert.is(JSON.parse(lines[2]).msg, '12D3KooWJwhT1nYMPVywsHd6yGKv75tryF7r7kCW9Dpq6rRZEfyK at /ip4/127.0.0.1/tcp/1')
})

test('renderLibp2pLine: formatters, extra arguments, bytes and errors', () => {
  assert.is(renderLibp2pLine('%d%% of %s', [50, 'x', { a: 1 }]), '50% of x { a: 1 }')
  assert.is(renderLibp2pLine('%b', [new Uint8Array([1, 255])]), '01ff')
  assert.is(renderLibp2pLine('failed %e', [new TypeError('bad')]), 'failed TypeError: bad')
  assert.is(renderLibp2pLine('left %s', []), 'left %s')
})

test('the log file rotates at its size: FILE.1 .. FILE.<maxFiles>, the oldest dropped, each file within the bound', () => {
  const path = join(dir, 'rotate', 'sdte.log')
  const f = new RotatingLogFile({ path, maxBytes: 1000, maxFiles: 2 })
  const line = (i: number): string => `line ${String(i).padStart(4, '0')} ` + 'x'.repeat(89) // 100 bytes with its newline
  for (let i = 0; i < 45; i++) f.write(line(i))
  f.close()
  assert.equal(readdirSync(join(dir, 'rotate')).sort(), ['sdte.log', 'sdte.log.1', 'sdte.log.2'])
  for (const name of ['sdte.log', 'sdte.log.1', 'sdte.log.2']) assert.ok(statSync(join(dir, 'rotate', name)).size <= 1000, name)
  // 45 lines of 100 bytes, 10 a file: the current file has 40..44, .1 has 30..39, .2 has 20..29; 0..19 are gone.
  assert.is(readFileSync(path, 'utf8'), [40, 41, 42, 43, 44].map(i => line(i) + '\n').join(''))
  assert.ok(readFileSync(path + '.1', 'utf8').startsWith(line(30)))
  assert.ok(readFileSync(path + '.2', 'utf8').startsWith(line(20)))
  assert.is(statSync(path).mode & 0o777, 0o600)
  // Reopened, it appends and counts what is already there.
  const g = new RotatingLogFile({ path, maxBytes: 1000, maxFiles: 2 })
  for (let i = 45; i < 51; i++) g.write(line(i))
  g.close()
  assert.ok(readFileSync(path, 'utf8').startsWith(line(50)))
  assert.ok(readFileSync(path + '.1', 'utf8').startsWith(line(40)))
})

test('the daemon\'s loggers write to the file too (configureLogging file), and stop when it is closed', () => {
  const path = join(dir, 'daemon.log')
  configureLogging({ format: 'json', file: { path, maxBytes: 10_000, maxFiles: 1 } })
  logger('sdte:test').info('to the file', { apiToken: 'abc' })
  configureLogging({ file: null })
  logger('sdte:test').info('not to the file')
  const written = readFileSync(path, 'utf8').trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
  assert.is(written.length, 1)
  assert.is(written[0].msg, 'to the file')
  assert.is(written[0].apiToken, '[redacted]')
  assert.ok(existsSync(path))
})

test.run()
