// Parameter schemas for control API methods. A method declares its params in order; a request may
// pass them by position (array) or by name (object). Each is checked and converted here, so handlers
// receive typed values and a bad request fails with -32602 naming the param and the reason. The
// handler's params type is inferred from the same declaration (ParamsOf), never written by hand.
import { invalidParams } from './errors.ts'

export type ParamType = 'string' | 'integer' | 'boolean' | 'hex' | 'address' | 'bytes32' | 'wei' | 'multiaddr' | 'path' | 'object'

export interface ParamSpec {
  name: string
  type: ParamType
  description: string
  required?: boolean
  /** Max string length (default 4096; hex defaults to 2 MiB of characters). */
  maxLength?: number
  min?: number
  max?: number
  enum?: readonly string[]
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
const HEX = new RegExp(HEX_PATTERN)
const ADDRESS = new RegExp(ADDRESS_PATTERN)
const BYTES32 = new RegExp(BYTES32_PATTERN)

const DEFAULT_MAX_LENGTH = 4096
const DEFAULT_MAX_HEX_LENGTH = 2 * 1024 * 1024

function schemaOf (p: ParamSpec): Record<string, unknown> {
  switch (p.type) {
    case 'integer': return { type: 'integer', ...(p.min !== undefined && { minimum: p.min }), ...(p.max !== undefined && { maximum: p.max }) }
    case 'boolean': return { type: 'boolean' }
    case 'object': return { type: 'object' }
    case 'hex': return { type: 'string', pattern: HEX_PATTERN }
    case 'address': return { type: 'string', pattern: ADDRESS_PATTERN }
    case 'bytes32': return { type: 'string', pattern: BYTES32_PATTERN }
    case 'wei': return { type: 'string', pattern: '^[0-9]{1,78}$', description: 'wei as a decimal string' }
    default: return { type: 'string', ...(p.enum !== undefined && { enum: p.enum }) }
  }
}

/** The OpenRPC content descriptor of a param. */
export function describeParam (p: ParamSpec): Record<string, unknown> {
  return { name: p.name, description: p.description, required: p.required !== false, schema: schemaOf(p) }
}

function checkOne (p: ParamSpec, v: unknown): unknown {
  const fail = (why: string): never => { throw invalidParams(p.name, why) }
  const str = (max: number): string => {
    if (typeof v !== 'string') fail(`expected a string, got ${v === null ? 'null' : typeof v}`)
    if ((v as string).length > max) fail(`longer than ${max} characters`)
    return v as string
  }
  switch (p.type) {
    case 'string':
    case 'path': {
      const s = str(p.maxLength ?? DEFAULT_MAX_LENGTH)
      if (s === '') fail('must not be empty')
      if (p.enum !== undefined && !p.enum.includes(s)) fail(`must be one of ${p.enum.join(', ')}`)
      return s
    }
    case 'multiaddr': {
      const s = str(p.maxLength ?? 1024)
      if (!s.startsWith('/')) fail('expected a multiaddr such as /ip4/127.0.0.1/tcp/4001/p2p/<peer id>')
      return s
    }
    case 'hex': {
      const s = str(p.maxLength ?? DEFAULT_MAX_HEX_LENGTH)
      if (!HEX.test(s)) fail('expected 0x-prefixed hex of whole bytes')
      return s.toLowerCase()
    }
    case 'address': {
      const s = str(42)
      if (!ADDRESS.test(s)) fail('expected a 20-byte 0x-prefixed address')
      return s
    }
    case 'bytes32': {
      const s = str(66)
      if (!BYTES32.test(s)) fail('expected a 32-byte 0x-prefixed hex string')
      return s.toLowerCase()
    }
    case 'wei': {
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v)
      const s = str(78)
      if (!/^[0-9]+$/.test(s)) fail('expected wei as a decimal string of digits')
      return BigInt(s)
    }
    case 'integer': {
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail('expected an integer')
      if (p.min !== undefined && (v as number) < p.min) fail(`must be at least ${p.min}`)
      if (p.max !== undefined && (v as number) > p.max) fail(`must be at most ${p.max}`)
      return v
    }
    case 'boolean':
      if (typeof v !== 'boolean') fail('expected true or false')
      return v
    case 'object':
      if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('expected an object')
      return v
  }
}

/** Checks raw JSON-RPC params against the specs; returns them by name. */
export function checkParams (specs: readonly ParamSpec[], raw: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  let byName: Record<string, unknown>
  if (raw === undefined || raw === null) {
    byName = {}
  } else if (Array.isArray(raw)) {
    if (raw.length > specs.length) throw invalidParams('(params)', `at most ${specs.length} positional params, got ${raw.length}`)
    byName = Object.fromEntries(raw.map((v, i) => [specs[i].name, v]))
  } else if (typeof raw === 'object') {
    byName = raw as Record<string, unknown>
    for (const k of Object.keys(byName)) {
      if (!specs.some(s => s.name === k)) throw invalidParams(k, 'unknown param')
    }
  } else {
    throw invalidParams('(params)', 'must be an array or an object')
  }
  for (const spec of specs) {
    const v = byName[spec.name]
    if (v === undefined || v === null) {
      if (spec.required !== false) throw invalidParams(spec.name, 'required')
      continue
    }
    out[spec.name] = checkOne(spec, v)
  }
  return out
}
