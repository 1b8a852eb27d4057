// The dashboard: a page the control API server serves on GET / (docs/guide.md, Dashboard). The page
// is static and holds nothing of the daemon's; its script asks the control API for everything with
// the bearer token, which the operator gives in the URL's fragment (`sdte dashboard` prints the URL).
// A fragment is never sent to a server, so the token is in no request line, log or Referer; the page
// moves it to the tab's sessionStorage and takes it out of the address bar at once.
import { readFileSync } from 'node:fs'

/** How often the page asks the daemon again (the page reads it from its own <meta>). */
export const DASHBOARD_POLL_MS = 2000
/** The newest trades the page shows with their timelines (trade_get each); older ones are counted only. */
export const DASHBOARD_MAX_TRADES = 20

/** One file the server answers a GET with. */
export interface StaticPage { contentType: string, body: Buffer }

/**
 * The headers of every dashboard response: its own script and style only, no frames, no referrer,
 * no caching (the page is the daemon's version's), fetch() to the same origin only.
 */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store'
}

function file (name: string): Buffer {
  return readFileSync(new URL(`./${name}`, import.meta.url))
}

/** The dashboard's files by URL path. */
export function dashboardPages (): Map<string, StaticPage> {
  const html = file('page.html').toString('utf8')
    .replace('{{POLL_MS}}', String(DASHBOARD_POLL_MS))
    .replace('{{MAX_TRADES}}', String(DASHBOARD_MAX_TRADES))
  return new Map([
    ['/', { contentType: 'text/html; charset=utf-8', body: Buffer.from(html) }],
    ['/dashboard.js', { contentType: 'text/javascript; charset=utf-8', body: file('page.js') }],
    ['/dashboard.css', { contentType: 'text/css; charset=utf-8', body: file('page.css') }]
  ])
}
