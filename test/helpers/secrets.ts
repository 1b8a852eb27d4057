// Looks for secrets where none may be: daemon logs, every store, the chain. A secret is searched
// as raw bytes, as hex and inside every base64 string value of the stores (decoded).
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { Level } from 'level'
import { JsonRpcProvider, getBytes } from 'ethers'

export interface Secret { name: string, bytes: Uint8Array }

/**
 * Needles for a secret, raw and as hex: all of it up to 256 bytes (a short, ABI-encoded result is
 * mostly zero padding, so a slice of it would match any calldata), else a 64-byte slice from its middle.
 */
function needles (s: Secret): Buffer[] {
  const b = Buffer.from(s.bytes)
  const slice = b.length <= 256 ? b : b.subarray(Math.floor(b.length / 2) - 32, Math.floor(b.length / 2) + 32)
  return [slice, Buffer.from(slice.toString('hex')), Buffer.from(slice.toString('hex').toUpperCase())]
}

export function findIn (haystack: Buffer, secrets: Secret[], where: string): string[] {
  const hits: string[] = []
  for (const s of secrets) {
    if (needles(s).some(n => haystack.includes(n))) hits.push(`${s.name} in ${where}`)
  }
  return hits
}

function walk (dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...walk(p))
    else out.push(p)
  }
  return out
}

/** Every log file under a datadir. */
export function searchLogs (datadir: string, secrets: Secret[]): string[] {
  return walk(datadir).filter(p => p.endsWith('.log') && !p.includes(`${join('store', '')}`))
    .flatMap(p => findIn(readFileSync(p), secrets, p))
}

/** Every key and value of a daemon's level store (it must be closed), base64 strings decoded too. */
export async function searchStore (datadir: string, secrets: Secret[]): Promise<string[]> {
  const path = join(datadir, 'store')
  if (!existsSync(path)) return []
  const db = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  const hits: string[] = []
  try {
    for await (const [k, v] of db.iterator()) {
      const where = `${path} key ${k.toString().slice(0, 60)}`
      hits.push(...findIn(Buffer.concat([k, v]), secrets, where))
      for (const m of v.toString().matchAll(/"([A-Za-z0-9+/_-]{24,}={0,2})"/g)) {
        hits.push(...findIn(Buffer.from(m[1], 'base64'), secrets, `${where} (base64)`))
      }
    }
  } finally {
    await db.close()
  }
  return hits
}

/** Every transaction input and every log of the chain, from block 0. */
export async function searchChain (rpcUrl: string, secrets: Secret[]): Promise<string[]> {
  const provider = new JsonRpcProvider(rpcUrl)
  const hits: string[] = []
  try {
    const latest = await provider.getBlockNumber()
    for (let n = 0; n <= latest; n++) {
      const block = await provider.send('eth_getBlockByNumber', ['0x' + n.toString(16), true]) as { transactions: Array<{ hash: string, input: string }> }
      for (const tx of block.transactions) hits.push(...findIn(Buffer.from(getBytes(tx.input)), secrets, `tx ${tx.hash} input`))
    }
    const logs = await provider.getLogs({ fromBlock: 0, toBlock: latest })
    for (const l of logs) hits.push(...findIn(Buffer.concat([Buffer.from(getBytes(l.data)), ...l.topics.map(t => Buffer.from(getBytes(t)))]), secrets, `log of tx ${l.transactionHash}`))
  } finally {
    provider.destroy()
  }
  return hits
}
