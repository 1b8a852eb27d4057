// Parameter schemas for control API methods. A method declares its params in order; a request may
// pass them by position (array) or by name (object). Each is checked and converted here, so handlers
// receive typed values and a bad request fails with -32602 naming the param and the reason. The
// handler's params type is inferred from the same declaration (ParamsOf), never written by hand.
import { invalidParams } from './errors.ts'
import { validate, type JsonSchema } from './schema.ts'

export type ParamType = 'string' | 'integer' | 'boolean' | 'hex' | 'address' | 'bytes32' | 'wei' | 'multiaddr' | 'path' | 'object'

export interface ParamSpec {
  name: string
  type: ParamType
  description: string
  required?: boolean
  /** Max string length in characters (default DEFAULT_MAX_LENGTH; hex DEFAULT_MAX_HEX_LENGTH; multiaddr MAX_MULTIADDR_LENGTH). */
  maxLength?: number
  min?: number
  max?: number
  enum?: readonly string[]
  /** string: a regular expression (JSON Schema `pattern`, Unicode) the whole value must match. */
  pattern?: string
  /** wei: the width of the unsigned integer it lands in (the contract field or digest word); default 256. */
  bits?: 64 | 96 | 128 | 256
  /** object: the JSON Schema of its fields (daemon/rpc/schema.ts subset); default any object. */
  schema?: JsonSchema
}

/** The value a param of this type is converted to. */
export type ValueOfType<T extends ParamType> =
  T extends 'integer' ? number
    : T extends 'boolean' ? boolean
      : T extends 'wei' ? bigint
        : T extends 'object' ? Record<string, unknown>
          : string

type ValueOf<S extends ParamSpec> = S extends { enum: ReadonlyArray<infer E> } ? E : ValueOfType<S['type']>

/** What a handler receives for a declared param list: required params as given, the others optional. */
export type ParamsOf<P extends readonly ParamSpec[]> =
  { [S in P[number] as S extends { required: false } ? never : S['name']]: ValueOf<S> } &
  { [S in P[number] as S extends { required: false } ? S['name'] : never]?: ValueOf<S> }

/** The JSON Schema patterns of the control API's hex types (params and results), and their checks. */
export const HEX_PATTERN = '^0x([0-9a-fA-F]{2})*$'
export const ADDRESS_PATTERN = '^0x[0-9a-fA-F]{40}$'
export const BYTES32_PATTERN = '^0x[0-9a-fA-F]{64}$'

/** The longest string param unless it says otherwise, and the longest hex (2 MiB of characters: 1 MiB of code). */
export const DEFAULT_MAX_LENGTH = 4096
export const DEFAULT_MAX_HEX_LENGTH = 2 * 1024 * 1024
export const MAX_MULTIADDR_LENGTH = 1024

/**
 * The most decimal digits a wei param of this width takes: one fewer than 2^bits - 1 has, so that every
 * value the pattern allows fits (a 78-digit number can overflow a uint256; no 77-digit one can).
 */
export function weiDigits (bits: number): number {
  return ((1n << BigInt(bits)) - 1n).toString().length - 1
}

/**
 * The JSON Schema of a param: what rpc_discover serves and, the same object, what checkParams checks a
 * request against. Every limit the server applies is in it.
 */
export function schemaOf (p: ParamSpec): JsonSchema {
  switch (p.type) {
    case 'integer': return { type: 'integer', minimum: p.min ?? -Number.MAX_SAFE_INTEGER, maximum: p.max ?? Number.MAX_SAFE_INTEGER }
    case 'boolean': return { type: 'boolean' }
    case 'object': return p.schema ?? { type: 'object' }
    case 'hex': return { type: 'string', pattern: HEX_PATTERN, maxLength: p.maxLength ?? DEFAULT_MAX_HEX_LENGTH, description: '0x-prefixed hex of whole bytes' }
    case 'address': return { type: 'string', pattern: ADDRESS_PATTERN, description: 'a 20-byte 0x-prefixed address' }
    case 'bytes32': return { type: 'string', pattern: BYTES32_PATTERN, description: 'a 32-byte 0x-prefixed hex string' }
    case 'wei': {
      const digits = weiDigits(p.bits ?? 256)
      return { type: 'string', pattern: `^[0-9]{1,${digits}}$`, description: `an unsigned integer as a decimal string of at most ${digits} digits (fits a uint${p.bits ?? 256})` }
    }
    case 'multiaddr': return { type: 'string', pattern: '^/', maxLength: p.maxLength ?? MAX_MULTIADDR_LENGTH, description: 'a multiaddr such as /ip4/127.0.0.1/tcp/4001/p2p/<peer id>' }
    default: return { type: 'string', minLength: 1, maxLength: p.maxLength ?? DEFAULT_MAX_LENGTH, ...(p.pattern !== undefined && { pattern: p.pattern }), ...(p.enum !== undefined && { enum: p.enum }) }
  }
}

/** The OpenRPC content descriptor of a param. */
export function describeParam (p: ParamSpec): Record<string, unknown> {
  return { name: p.name, description: p.description, required: p.required !== false, schema: schemaOf(p) }
}

/** Why a value is not one the param's schema allows, or the value converted for the handler. */
function checkOne (p: ParamSpec, v: unknown): { value: unknown } | { why: string } {
  const why = validate(schemaOf(p), v)
  if (why !== undefined) return { why }
  switch (p.type) {
    // Lowercase: an address in any case is one address (the schema cannot check an EIP-55 checksum, so
    // none is checked; ethers would refuse a mixed case whose checksum is wrong, as an internal error).
    case 'address':
    case 'hex':
    case 'bytes32': return { value: (v as string).toLowerCase() }
    case 'wei': return { value: BigInt(v as string) }
    default: return { value: v }
  }
}

/**
 * Checks raw JSON-RPC params against the specs; returns them by name. A bad request fails with -32602
 * naming the first bad param (`data.param`) and listing every one (`data.params`), so that a client
 * fixes them all at once. `null` is a value like any other: a param is omitted by leaving it out.
 */
export function checkParams (specs: readonly ParamSpec[], raw: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  let byName: Record<string, unknown>
  if (raw === undefined) {
    byName = {}
  } else if (Array.isArray(raw)) {
    if (raw.length > specs.length) throw invalidParams('(params)', `at most ${specs.length} positional params, got ${raw.length}`)
    byName = Object.fromEntries(raw.map((v, i) => [specs[i].name, v]))
  } else if (raw !== null && typeof raw === 'object') {
    byName = raw as Record<string, unknown>
  } else {
    throw invalidParams('(params)', 'must be an array or an object')
  }
  const bad: Array<{ param: string, why: string }> = []
  for (const k of Object.keys(byName)) {
    if (!specs.some(s => s.name === k)) bad.push({ param: k.slice(0, 100), why: 'unknown param' })
  }
  for (const spec of specs) {
    if (!Object.hasOwn(byName, spec.name) || byName[spec.name] === undefined) {
      if (spec.required !== false) bad.push({ param: spec.name, why: 'required' })
      continue
    }
    const r = checkOne(spec, byName[spec.name])
    if ('why' in r) bad.push({ param: spec.name, why: r.why })
    else out[spec.name] = r.value
  }
  if (bad.length > 0) throw invalidParams(bad[0].param, bad[0].why, bad)
  return out
}
