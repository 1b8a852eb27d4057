// The dashboard in a real browser: headless Chromium (Debian's `chromium` package, /usr/bin/chromium;
// .ci/run installs it) opens the URL `sdte dashboard` prints for a real daemon (in this process: a
// trusted node on a devnet, with a relay as its peer) whose store holds trade records of every role
// (written here: a whole trade would cost a minute and test nothing more of the page). The page
// shows the trades with their timelines, the peer, the node's balance and its enclave; it takes the
// token out of the address bar, follows a trade live, shows peers' notes as text, and asks for a
// token when it has a wrong one. Without chromium the browser tests are skipped, visibly.
// SDTE_SCREENSHOT=1 writes docs/dashboard.png (the screenshot in the docs).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { resolveOptions } from '../../config/options.ts'
import { SdteDaemon } from '../../daemon/daemon.ts'
import { devnetDown, devnetUp } from '../../contracts/tools/index.ts'
import { computeMeasurement } from '../../enclave/measurement.ts'

const ROOT = new URL('../../', import.meta.url).pathname
const SDTE = join(ROOT, 'bin', 'sdte')
const CHROMIUM = '/usr/bin/chromium'
/** Flags for a browser on a machine without network: nothing phones home, no GPU, no sandbox (root in CI). */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const dir = mkdtempSync(join(tmpdir(), 'sdte-dashboard-'))
const DELIVERED = '0x' + 'd1'.repeat(32)
const LIVE = '0x' + 'a2'.repeat(32)
const REFUNDED = '0x' + 'f3'.repeat(32)
/** A note from another peer that would be markup if the page used innerHTML. */
const HOSTILE_NOTE = '<img src=x id=injected> from a peer'

let daemon: SdteDaemon
let peer: SdteDaemon
let context: BrowserContext | undefined
let page: Page
let url = ''

/** `sdte dashboard --datadir` of the daemon, as an operator runs it. */
async function dashboardUrl (datadir: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const child = spawn(SDTE, ['dashboard', '--datadir', datadir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.on('close', code => { code === 0 ? resolve(out.trim()) : reject(new Error(`sdte dashboard exited ${code}: ${err}`)) })
  })
}

/** A GET with this Host header (fetch cannot set one). */
async function getWithHost (target: string, host: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = request(target, { headers: { host } }, res => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

test.before(async () => {
  await devnetUp({ dir: join(dir, 'devnet'), measurements: [computeMeasurement()] })
  daemon = new SdteDaemon(resolveOptions(join(dir, 'a'), { roles: ['node'], network: join(dir, 'devnet', 'network.json'), keys: { scryptN: 1024 }, p2p: { listen: ['/ip4/127.0.0.1/tcp/0'] } }, {}))
  peer = new SdteDaemon(resolveOptions(join(dir, 'b'), { roles: ['relay'], keys: { scryptN: 1024 }, p2p: { listen: ['/ip4/127.0.0.1/tcp/0'] } }, {}))
  await daemon.start()
  await daemon.booted // the node's enclave and CISC registration, after the start returned
  await peer.start()
  await daemon.p2p.connect(peer.p2p.addresses()[0])

  // A buyer's trade that went the whole way, with a seller's record of it on the same daemon.
  let buyer = await daemon.trades.create('buyer', DELIVERED, 'demanded', {}, 'Stats on tag weather, 3 nodes')
  for (const [state, note] of [['attesting', '3 enclaves attested'], ['escrowed', 'deposit 0.05 ETH'], ['executing', undefined], ['finalized', 'majority 3 of 3'], ['delivered', 'result checked']] as const) {
    buyer = await daemon.trades.transition(buyer, state, { note })
  }
  let seller = await daemon.trades.create('seller', DELIVERED, 'escrowed', {})
  seller = await daemon.trades.transition(seller, 'delivering', { note: HOSTILE_NOTE })
  await daemon.trades.transition(seller, 'finalized', { note: 'paid' })
  // A refunded one.
  const refunded = await daemon.trades.create('buyer', REFUNDED, 'demanded', {})
  await daemon.trades.transition(await daemon.trades.transition(refunded, 'escrowed', {}), 'refunded', { reason: 'no result by the deadline' })
  url = await dashboardUrl(join(dir, 'a'))
})

test.after(async () => {
  await context?.close()
  await peer?.stop()
  await daemon?.stop()
  await devnetDown(join(dir, 'devnet'))
  rmSync(dir, { recursive: true, force: true })
})

test('sdte dashboard prints the API URL with the token in its fragment', () => {
  const token = readFileSync(join(dir, 'a', 'api-token'), 'utf8').trim()
  assert.is(url, `${daemon.rpc.address}#token=${token}`)
})

test('the page itself holds nothing of the daemon; a foreign Host is refused, a foreign origin gets no CORS', async () => {
  const res = await fetch(daemon.rpc.address)
  assert.is(res.status, 200)
  assert.is(res.headers.get('referrer-policy'), 'no-referrer')
  assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/)
  const html = await res.text()
  assert.not.ok(html.includes(daemon.keys.peerId), 'no peer id in the page')
  const port = new URL(daemon.rpc.address).port
  // A web site whose name resolves to 127.0.0.1 (DNS rebinding) gets nothing to run.
  const rebound = await getWithHost(daemon.rpc.address, `attacker.example:${port}`)
  assert.is(rebound.status, 403)
  assert.is((await getWithHost(daemon.rpc.address, `localhost:${port}`)).status, 200)
  assert.is((await fetch(new URL('/nothing', daemon.rpc.address))).status, 404)
  // A foreign page's script may send the bearer header only after a CORS preflight, which gets no
  // access-control-allow-* header: the browser then sends nothing.
  const preflight = await fetch(daemon.rpc.address, { method: 'OPTIONS', headers: { origin: 'http://attacker.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' } })
  assert.is(preflight.status, 405)
  assert.equal([...preflight.headers.keys()].filter(h => h.startsWith('access-control-')), [])
})

const hasChromium = existsSync(CHROMIUM)
if (!hasChromium) console.log(`SKIPPED (visibly): no ${CHROMIUM}; the browser tests need Debian's chromium package (apt-get install -y chromium)`)
const browserTest = hasChromium ? test : test.skip

browserTest('in Chromium: the trades with their timelines, the peer, the balance, the enclave; the token leaves the address bar', async () => {
  context = await chromium.launchPersistentContext(mkdtempSync(join(dir, 'chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 }
  })
  page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', e => errors.push(e.message))
  await page.goto(url)
  await page.waitForSelector(`.trade[data-trade="${DELIVERED}"] .record[data-role="seller"]`)

  assert.is(await page.evaluate('location.hash'), '', 'no token in the address bar')
  const delivered = page.locator(`.trade[data-trade="${DELIVERED}"]`)
  assert.is(await delivered.locator('.record[data-role="buyer"]').getAttribute('data-state'), 'delivered')
  assert.equal(await delivered.locator('.record[data-role="buyer"] .timeline li').evaluateAll(lis => lis.map(li => li.getAttribute('data-state'))),
    ['demanded', 'attesting', 'escrowed', 'executing', 'finalized', 'delivered'])
  assert.match(await delivered.locator('.record[data-role="buyer"] .timeline').innerText(), /majority 3 of 3/)
  assert.is(await delivered.locator('.record[data-role="seller"]').getAttribute('data-state'), 'finalized')
  // The peer's note is text in the page, not an element.
  assert.match(await delivered.locator('.record[data-role="seller"]').innerText(), /<img src=x id=injected> from a peer/)
  assert.is(await page.locator('#injected').count(), 0)
  const refunded = page.locator(`.trade[data-trade="${REFUNDED}"] .record[data-role="buyer"]`)
  assert.is(await refunded.getAttribute('data-state'), 'refunded')
  assert.match(await refunded.innerText(), /no result by the deadline/)

  assert.match(await page.locator('#node').innerText(), new RegExp(daemon.keys.peerId))
  assert.match(await page.locator('#peers').innerText(), new RegExp(peer.keys.peerId))
  assert.match(await page.locator('#balance').innerText(), new RegExp(`${daemon.keys.ethAddress}[\\s\\S]*balance\\s+\\d+(\\.\\d+)? ETH`))
  const enclave = await page.locator('#enclave').innerText()
  assert.match(enclave, new RegExp(computeMeasurement()))
  assert.match(enclave, /accepted\s+yes: DTMC accepts it/)
  assert.equal(errors, [])
})

browserTest('in Chromium: live, a new trade and its next state appear without a reload', async () => {
  let buyer = await daemon.trades.create('buyer', LIVE, 'demanded', {}, 'Histogram on tag traffic')
  await page.waitForSelector(`.trade[data-trade="${LIVE}"] .record[data-state="demanded"]`)
  buyer = await daemon.trades.transition(buyer, 'attesting', { note: '1 of 2 enclaves attested' })
  await page.waitForSelector(`.trade[data-trade="${LIVE}"] .record[data-state="attesting"]`)
  await daemon.trades.transition(buyer, 'escrowed', { note: 'deposit 0.02 ETH' })
  await page.waitForSelector(`.trade[data-trade="${LIVE}"] .record[data-state="escrowed"]`)
  assert.match(await page.locator('#live').innerText(), /^live/)
  if (process.env.SDTE_SCREENSHOT === '1') await page.screenshot({ path: join(ROOT, 'docs', 'dashboard.png'), fullPage: true })
})

browserTest('in Chromium: a wrong token gets the token form, and the right one opens the dashboard', async () => {
  const fresh = await context!.newPage()
  await fresh.goto(`${daemon.rpc.address}#token=wrong`)
  await fresh.waitForSelector('#login:not([hidden])')
  assert.match(await fresh.locator('#login-error').innerText(), /did not accept the token/)
  assert.is(await fresh.locator('#main').isHidden(), true)
  await fresh.fill('#token', readFileSync(join(dir, 'a', 'api-token'), 'utf8').trim())
  await fresh.click('button[type="submit"]')
  await fresh.waitForSelector(`.trade[data-trade="${DELIVERED}"]`)
  await fresh.close()
})

test.run()
