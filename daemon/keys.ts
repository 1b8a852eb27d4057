// The daemon's long-lived keys, created on first start and kept in the datadir, owner-only:
// - `peer-key`: the libp2p Ed25519 peer key (protobuf), which fixes the peer id;
// - `keystore.json`: the Ethereum account, an encrypted JSON keystore (scrypt + AES-128-CTR, ethers).
//   Its password comes from `keys.passwordFile`, else SDTE_PASSWORD, else a random password that the
//   daemon generates once into `keystore-password` (mode 0600) — convenient on a devnet, and no worse
//   than an unencrypted key file; production users should pass a password file kept elsewhere.
// Keys are never printed or logged.
import { SdteError } from '../config/index.ts'
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes, scrypt as nodeScrypt } from 'node:crypto'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { Wallet, encryptKeystoreJson, decryptKeystoreJson, isKeystoreJson, isError, getAddress, scrypt } from 'ethers'
import { logger } from './log.ts'
import type { KeyOptions } from '../config/index.ts'

const log = logger('sdte:keys')

// The keystore's scrypt runs on Node's (OpenSSL's, on libuv's thread pool) instead of ethers' JavaScript one:
// the same bytes, without holding the main thread (ethers' took 21 ms at N=1024 and 370 ms at its default 2^17
// on the bench machine, Node's 3 ms and 260 ms; issue 13, BENCHMARKS.md "start to admin_info"). ethers lets a
// program register its scrypt (scrypt.register), so the keystore format and its checks stay ethers'. Once per
// process: this module is loaded once.
scrypt.register(async (password, salt, N, r, p, dkLen) => await new Promise<Uint8Array>((resolve, reject) => {
  // OpenSSL refuses to use more than maxmem; scrypt needs about 128 * r * (N + p) bytes, so 256 * N * r * p is
  // headroom (256 MiB at ethers' default N = 2^17, r = 8, p = 1, of which about 128 MiB is used).
  nodeScrypt(password, salt, dkLen, { N, r, p, maxmem: 256 * N * r * p }, (err, key) => { err === null ? resolve(key) : reject(err) })
}))

export const PEER_KEY_FILE = 'peer-key'
export const KEYSTORE_FILE = 'keystore.json'
export const GENERATED_PASSWORD_FILE = 'keystore-password'

export class KeyStoreError extends SdteError {
  override name = 'KeyStoreError'
  constructor (message: string, code = 'ERR_KEYSTORE_ERROR') {
    super(message)
    this.code = code
  }
}

export type { KeyOptions }

export interface DaemonKeys {
  peerKey: PrivateKey
  peerId: string
  ethWallet: Wallet
  ethAddress: string
}

/** Writes a file readable by its owner only, atomically (temp file + rename). */
export function writeSecretFile (path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' })
  chmodSync(tmp, 0o600)
  renameSync(tmp, path)
}

function checkOwnerOnly (path: string): void {
  const mode = statSync(path).mode & 0o777
  if ((mode & 0o077) !== 0) {
    throw new KeyStoreError(`${path} is readable by others (mode ${mode.toString(8)}); run chmod 600 ${path}`, 'ERR_KEY_FILE_PERMISSIONS')
  }
}

export async function loadOrCreatePeerKey (datadir: string): Promise<PrivateKey> {
  const path = join(datadir, PEER_KEY_FILE)
  if (existsSync(path)) {
    checkOwnerOnly(path)
    try {
      return privateKeyFromProtobuf(readFileSync(path))
    } catch (err) {
      throw new KeyStoreError(`${path}: not a libp2p private key (${(err as Error).message})`, 'ERR_PEER_KEY_INVALID')
    }
  }
  const key = await generateKeyPair('Ed25519')
  writeSecretFile(path, privateKeyToProtobuf(key))
  log.info('created peer key', { peerId: peerIdFromPrivateKey(key).toString() })
  return key
}

function readPassword (datadir: string, opts: KeyOptions, env: NodeJS.ProcessEnv, creating: boolean): string {
  if (opts.passwordFile !== null) {
    try {
      return readFileSync(opts.passwordFile, 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      throw new KeyStoreError(`cannot read password file ${opts.passwordFile}: ${(err as NodeJS.ErrnoException).code}`, 'ERR_PASSWORD_UNAVAILABLE')
    }
  }
  if (env.SDTE_PASSWORD !== undefined && env.SDTE_PASSWORD !== '') return env.SDTE_PASSWORD
  const generated = join(datadir, GENERATED_PASSWORD_FILE)
  if (existsSync(generated)) {
    checkOwnerOnly(generated)
    return readFileSync(generated, 'utf8')
  }
  if (!creating) {
    throw new KeyStoreError(`${join(datadir, KEYSTORE_FILE)} exists but no password was given: use --password-file or SDTE_PASSWORD`, 'ERR_PASSWORD_UNAVAILABLE')
  }
  const password = randomBytes(32).toString('base64url')
  writeSecretFile(generated, password)
  return password
}

/**
 * Why a keystore did not open, told apart: ethers refuses a wrong password (the MAC does not match: an altered
 * ciphertext looks the same) and a malformed keystore as invalid arguments, the first named `password`; anything else came from the key derivation itself
 * (Node's scrypt: its parameters, or the memory they need), which a different password would not change.
 */
function keystoreDecryptError (path: string, err: unknown): KeyStoreError {
  if (isError(err, 'INVALID_ARGUMENT')) {
    return err.argument === 'password'
      ? new KeyStoreError(`${path}: wrong password, or the keystore was altered (give the password it was made with: --password-file or SDTE_PASSWORD)`, 'ERR_KEYSTORE_DECRYPT_FAILED')
      : new KeyStoreError(`${path}: corrupt keystore (${err.shortMessage}): restore it from a backup`, 'ERR_KEYSTORE_INVALID')
  }
  return new KeyStoreError(`${path}: could not derive the keystore's key (${err instanceof Error ? err.message : String(err)}): check its kdfparams, or free memory for scrypt`, 'ERR_KEYSTORE_KDF')
}

export async function loadOrCreateEthWallet (datadir: string, opts: KeyOptions, env: NodeJS.ProcessEnv = process.env): Promise<Wallet> {
  const path = join(datadir, KEYSTORE_FILE)
  if (existsSync(path)) {
    checkOwnerOnly(path)
    const json = readFileSync(path, 'utf8')
    if (!isKeystoreJson(json)) throw new KeyStoreError(`${path}: not an encrypted JSON keystore`, 'ERR_KEYSTORE_INVALID')
    const password = readPassword(datadir, opts, env, false)
    let account
    try {
      account = await decryptKeystoreJson(json, password)
    } catch (err) {
      throw keystoreDecryptError(path, err)
    }
    return new Wallet(account.privateKey)
  }
  const password = readPassword(datadir, opts, env, true)
  const wallet = Wallet.createRandom()
  const json = await encryptKeystoreJson({ address: wallet.address, privateKey: wallet.privateKey }, password, {
    scrypt: { N: opts.scryptN }
  })
  writeSecretFile(path, json)
  log.info('created Ethereum account', { address: wallet.address })
  return new Wallet(wallet.privateKey)
}

export async function loadOrCreateKeys (datadir: string, opts: KeyOptions, env: NodeJS.ProcessEnv = process.env): Promise<DaemonKeys> {
  const peerKey = await loadOrCreatePeerKey(datadir)
  const ethWallet = await loadOrCreateEthWallet(datadir, opts, env)
  return { peerKey, peerId: peerIdFromPrivateKey(peerKey).toString(), ethWallet, ethAddress: ethWallet.address }
}

/**
 * Who the keys in DIR are, without the password (`sdte id`): the peer id from the peer key, the
 * address from the keystore's clear `address` field. Undefined where a key is not made yet.
 */
export function readIdentity (datadir: string): { peerId?: string, ethAddress?: string } {
  const out: { peerId?: string, ethAddress?: string } = {}
  const peerKey = join(datadir, PEER_KEY_FILE)
  if (existsSync(peerKey)) {
    checkOwnerOnly(peerKey)
    try {
      out.peerId = peerIdFromPrivateKey(privateKeyFromProtobuf(readFileSync(peerKey))).toString()
    } catch (err) {
      throw new KeyStoreError(`${peerKey}: not a libp2p private key (${(err as Error).message})`, 'ERR_PEER_KEY_INVALID')
    }
  }
  const keystore = join(datadir, KEYSTORE_FILE)
  if (existsSync(keystore)) {
    const json = readFileSync(keystore, 'utf8')
    const address = isKeystoreJson(json) ? (JSON.parse(json) as { address?: unknown }).address : undefined
    if (typeof address !== 'string') throw new KeyStoreError(`${keystore}: not an encrypted JSON keystore with an address`, 'ERR_KEYSTORE_INVALID')
    out.ethAddress = getAddress(address.startsWith('0x') ? address : `0x${address}`)
  }
  return out
}
