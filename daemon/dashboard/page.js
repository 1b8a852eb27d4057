// The dashboard's script (plain browser JavaScript, served as is). It asks the control API (JSON-RPC
// batches, POST / with the bearer token) every poll and redraws: the daemon, its balance, its
// enclave, its trades with their timelines, its peers. Everything from the daemon is put in the page
// as text (textContent), never as HTML: trade notes and peer addresses come from other peers.
'use strict'
;(() => {
  const TOKEN_KEY = 'sdte-api-token'
  const meta = name => Number(document.querySelector(`meta[name="${name}"]`).content)
  const POLL_MS = meta('sdte-poll-ms')
  const MAX_TRADES = meta('sdte-max-trades')
  /** Ends of a role's trade that are a success, and those that are not (daemon/trades.ts TERMINAL_STATES). */
  const GOOD_ENDS = new Set(['finalized', 'delivered', 'rated'])
  const BAD_ENDS = new Set(['refunded', 'failed'])

  // The token comes in the fragment (never sent to the server): keep it for this tab, then take it
  // out of the address bar so that it is in no history entry, bookmark or screenshot.
  const given = /(?:^#|&)token=([^&]+)/.exec(location.hash)
  if (given !== null) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(given[1]))
    history.replaceState(null, '', location.pathname + location.search)
  }

  class Unauthorized extends Error {}

  const $ = id => document.getElementById(id)

  function el (tag, attrs = {}, ...children) {
    const e = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') e.className = v
      else e.setAttribute(k, v)
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)))
    return e
  }

  function fill (dl, rows) {
    dl.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]))
  }

  /** One JSON-RPC batch; each call's result, or { error } where the daemon answered an error. */
  async function batch (calls) {
    const token = sessionStorage.getItem(TOKEN_KEY)
    if (token === null) throw new Unauthorized('no token')
    const res = await fetch('/', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(calls.map(([method, params], id) => ({ jsonrpc: '2.0', id, method, ...(params !== undefined && { params }) }))),
      cache: 'no-store',
      referrerPolicy: 'no-referrer'
    })
    if (res.status === 401) throw new Unauthorized('the daemon did not accept the token')
    if (!res.ok) throw new Error(`the daemon answered HTTP ${res.status}`)
    const answers = await res.json()
    const byId = new Map(answers.map(a => [a.id, a]))
    return calls.map((_c, id) => {
      const a = byId.get(id)
      return a === undefined ? { error: { message: 'no answer' } } : 'error' in a ? { error: a.error } : a.result
    })
  }

  const short = s => s.length > 20 ? `${s.slice(0, 10)}…${s.slice(-8)}` : s
  const time = iso => new Date(iso).toLocaleTimeString([], { hour12: false })

  /** Wei (a decimal string) as ether with up to 6 decimals. */
  function ether (wei) {
    const v = BigInt(wei)
    const whole = v / 10n ** 18n
    const frac = (v % 10n ** 18n).toString().padStart(18, '0').slice(0, 6).replace(/0+$/, '')
    return `${whole}${frac === '' ? '' : '.' + frac} ETH`
  }

  function stateClass (state) {
    return BAD_ENDS.has(state) ? 'state bad' : GOOD_ENDS.has(state) ? 'state good' : 'state active'
  }

  function renderInfo (info) {
    $('identity').textContent = `${short(info.peerId)} · ${info.roles.join(', ')} · v${info.version}`
    fill($('node'), [
      ['peer id', info.peerId],
      ['eth address', info.ethAddress],
      ['roles', info.roles.join(', ')],
      ['network', info.network === null ? 'none' : `${info.network} (chain ${info.chainId})`],
      ['listening', info.addresses.join('\n')],
      ['version', info.version]
    ])
  }

  function renderBalance (b) {
    if ('error' in b) fill($('balance'), [['', b.error.code === -32601 ? 'no chain: this daemon is on no network' : b.error.message]])
    else fill($('balance'), [['account', b.address], ['balance', ether(b.wei)], ['to withdraw', ether(b.credit)]])
  }

  function renderEnclave (e) {
    if ('error' in e) fill($('enclave'), [['', e.error.message]])
    else fill($('enclave'), [['mode', e.mode], ['measurement', e.measurement], ['accepted', e.accepted ? 'yes: DTMC accepts it' : 'NO: not an accepted measurement'], ['attestation root', e.attestationRoot], ['tasks held', String(e.tasks)]])
  }

  function renderPeers (peers) {
    $('peer-count').textContent = String(peers.length)
    $('peers').tBodies[0].replaceChildren(...peers.map(p => el('tr', {}, el('td', { class: 'mono' }, p.peerId), el('td', { class: 'mono' }, p.addresses.join('\n')))))
  }

  function renderRecord (r) {
    const timeline = el('ol', { class: 'timeline' }, ...r.timeline.map(e =>
      el('li', { 'data-state': e.state, class: e.state === r.state ? 'current' : '' },
        el('span', { class: stateClass(e.state) }, e.state), ' ', el('time', { datetime: e.at }, time(e.at)), e.note !== undefined ? el('span', { class: 'note' }, ` ${e.note}`) : '')))
    return el('div', { class: 'record', 'data-role': r.role, 'data-state': r.state },
      el('div', { class: 'role' }, el('b', {}, r.role), ' ', el('span', { class: stateClass(r.state) }, r.state), r.reason !== undefined ? el('span', { class: 'reason' }, ` ${r.reason}`) : ''),
      timeline)
  }

  function renderTrades (list, views) {
    const ids = [...new Set(list.map(t => t.tradeId))]
    $('trade-count').textContent = ids.length > MAX_TRADES ? `${MAX_TRADES} newest of ${ids.length}` : String(ids.length)
    const nodes = views.map((v, i) => {
      if ('error' in v) return el('div', { class: 'trade' }, el('div', { class: 'mono' }, ids[i]), el('p', { class: 'error' }, v.error.message))
      const chain = v.chain === null ? 'not on DTMC' : `DTMC: ${v.chain.state}${v.chain.nResults !== undefined ? ` (${v.chain.nResults} result${v.chain.nResults === 1 ? '' : 's'})` : ''}`
      return el('div', { class: 'trade', 'data-trade': v.tradeId },
        el('div', { class: 'trade-head' }, el('span', { class: 'mono' }, v.tradeId), el('span', { class: 'chain' }, chain)),
        ...v.records.map(renderRecord))
    })
    $('trades').replaceChildren(...(nodes.length === 0 ? [el('p', { class: 'empty' }, 'no trades yet')] : nodes))
  }

  function setLive (state, text) {
    $('live').dataset.state = state
    $('live').textContent = text
  }

  function showLogin (message) {
    $('main').hidden = true
    $('login').hidden = false
    $('login-error').textContent = message
    setLive('stopped', 'no token')
  }

  let timer
  async function poll () {
    clearTimeout(timer)
    try {
      const [info, peers, list, balance, enclave] = await batch([['admin_info'], ['admin_peers'], ['trade_list'], ['chain_balance'], ['node_enclave']])
      for (const r of [info, peers, list]) if ('error' in r) throw new Error(r.error.message)
      const ids = [...new Set(list.map(t => t.tradeId))].slice(0, MAX_TRADES)
      const views = ids.length === 0 ? [] : await batch(ids.map(tradeId => ['trade_get', { tradeId }]))
      renderInfo(info)
      renderBalance(balance)
      renderEnclave(enclave)
      renderPeers(peers)
      renderTrades(list, views)
      $('login').hidden = true
      $('main').hidden = false
      setLive('live', `live · ${new Date().toLocaleTimeString([], { hour12: false })}`)
    } catch (err) {
      if (err instanceof Unauthorized) {
        sessionStorage.removeItem(TOKEN_KEY)
        showLogin(err.message === 'no token' ? '' : err.message)
        return
      }
      setLive('down', `disconnected: ${err.message}`)
    }
    timer = setTimeout(poll, POLL_MS)
  }

  $('login').addEventListener('submit', ev => {
    ev.preventDefault()
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim())
    $('token').value = ''
    void poll()
  })

  void poll()
})()
