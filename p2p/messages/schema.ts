// A tiny schema language for the JSON messages of our stream protocols, so that each protocol
// declares its messages in a few lines and gets a typed value or a MessageSchemaError naming the
// offending field. A schema is a function `(value: unknown, path?) => T`; objects are strict
// (unknown keys are refused) and every string, hex, array and bigint has an explicit bound.
//
//   const OfferRequest = object({
//     type: literal('offer-request'),
//     tradeId: hex({ bytes: 32 }),
//     price: bigintString({ max: 2n ** 256n - 1n }),
//     note: optional(string({ maxLength: 200 }))
//   })
//   type OfferRequest = Infer<typeof OfferRequest>
//
// Error messages name the field and the rule, never the value: values may be secret.
import { MessageSchemaError } from '../errors.ts'

export type Schema<T> = (value: unknown, path?: string) => T
export type Infer<S> = S extends Schema<infer T> ? T : never

const OPTIONAL: unique symbol = Symbol('sdte.schema.optional')
export type OptionalSchema<T> = Schema<T | undefined> & { [OPTIONAL]: true }

function fail (path: string, reason: string): never {
  throw new MessageSchemaError(path, reason)
}

export interface StringRule {
  /** Longest accepted string, in UTF-16 code units. Required: every string is bounded. */
  maxLength: number
  minLength?: number
  /** Full-match pattern, e.g. /^[a-z0-9-]+$/. */
  pattern?: RegExp
}

export function string (rule: StringRule): Schema<string> {
  return (value, path = '$') => {
    if (typeof value !== 'string') fail(path, 'expected a string')
    if (value.length > rule.maxLength) fail(path, `longer than ${rule.maxLength} characters`)
    if (rule.minLength !== undefined && value.length < rule.minLength) fail(path, `shorter than ${rule.minLength} characters`)
    if (rule.pattern !== undefined && !rule.pattern.test(value)) fail(path, `does not match ${String(rule.pattern)}`)
    return value
  }
}

export interface HexRule {
  /** Exact byte length (e.g. 32 for a hash). */
  bytes?: number
  /** Maximum byte length, when not exact. One of bytes/maxBytes is required. */
  maxBytes?: number
}

/** A 0x-prefixed hex string (either case), returned lowercased. */
export function hex (rule: HexRule): Schema<string> {
  const max = rule.bytes ?? rule.maxBytes
  if (max === undefined) throw new TypeError('hex() needs bytes or maxBytes')
  return (value, path = '$') => {
    if (typeof value !== 'string') fail(path, 'expected a 0x-prefixed hex string')
    if (value.length > 2 + 2 * max) fail(path, `longer than ${max} bytes`)
    if (!/^0x([0-9a-fA-F]{2})*$/.test(value)) fail(path, 'expected a 0x-prefixed hex string of whole bytes')
    const n = (value.length - 2) / 2
    if (rule.bytes !== undefined && n !== rule.bytes) fail(path, `expected exactly ${rule.bytes} bytes`)
    return value.toLowerCase()
  }
}

export interface NumberRule {
  min?: number
  max?: number
  /** Default true: most protocol numbers are counts, indexes or sizes. */
  integer?: boolean
}

export function number (rule: NumberRule = {}): Schema<number> {
  const integer = rule.integer ?? true
  return (value, path = '$') => {
    if (typeof value !== 'number' || !Number.isFinite(value)) fail(path, 'expected a finite number')
    if (integer && !Number.isSafeInteger(value)) fail(path, 'expected a safe integer')
    if (rule.min !== undefined && value < rule.min) fail(path, `less than ${rule.min}`)
    if (rule.max !== undefined && value > rule.max) fail(path, `greater than ${rule.max}`)
    return value
  }
}

export interface BigintRule {
  min?: bigint
  /** Default 2^256 - 1 (a uint256), so amounts always have a bound. */
  max?: bigint
}

const UINT256_MAX = (1n << 256n) - 1n

/** A non-negative (by default) integer sent as a decimal string, returned as bigint. */
export function bigintString (rule: BigintRule = {}): Schema<bigint> {
  const min = rule.min ?? 0n
  const max = rule.max ?? UINT256_MAX
  const maxDigits = (max < 0n ? -max : max).toString().length + 1
  return (value, path = '$') => {
    if (typeof value !== 'string') fail(path, 'expected a decimal integer string')
    if (value.length > maxDigits || !/^-?(0|[1-9][0-9]*)$/.test(value)) fail(path, 'expected a canonical decimal integer string')
    const n = BigInt(value)
    if (n < min) fail(path, `less than ${min}`)
    if (n > max) fail(path, `greater than ${max}`)
    return n
  }
}

export function boolean (): Schema<boolean> {
  return (value, path = '$') => {
    if (typeof value !== 'boolean') fail(path, 'expected a boolean')
    return value
  }
}

/** Exactly this string (a message's `type` tag). */
export function literal<L extends string> (expected: L): Schema<L> {
  return (value, path = '$') => {
    if (value !== expected) fail(path, `expected "${expected}"`)
    return expected
  }
}

/** One of a fixed set of strings. */
export function oneOf<L extends string> (allowed: readonly L[]): Schema<L> {
  return (value, path = '$') => {
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) fail(path, `expected one of ${allowed.join(', ')}`)
    return value as L
  }
}

export function array<T> (items: Schema<T>, rule: { maxItems: number, minItems?: number }): Schema<T[]> {
  return (value, path = '$') => {
    if (!Array.isArray(value)) fail(path, 'expected an array')
    if (value.length > rule.maxItems) fail(path, `more than ${rule.maxItems} items`)
    if (rule.minItems !== undefined && value.length < rule.minItems) fail(path, `fewer than ${rule.minItems} items`)
    return value.map((item, i) => items(item, `${path}[${i}]`))
  }
}

/** Marks an object field as optional: absent (or undefined) is accepted and left out. */
export function optional<T> (schema: Schema<T>): OptionalSchema<T> {
  const s = ((value: unknown, path = '$') => value === undefined ? undefined : schema(value, path)) as OptionalSchema<T>
  s[OPTIONAL] = true
  return s
}

type Fields = Record<string, Schema<unknown>>
type OptionalKeys<F extends Fields> = { [K in keyof F]: F[K] extends { [OPTIONAL]: true } ? K : never }[keyof F]
type RequiredKeys<F extends Fields> = Exclude<keyof F, OptionalKeys<F>>
export type ObjectOf<F extends Fields> =
  { [K in RequiredKeys<F>]: Infer<F[K]> } & { [K in OptionalKeys<F>]?: Exclude<Infer<F[K]>, undefined> }

/**
 * A plain JSON object with exactly these fields (unknown keys refused). The result is a fresh
 * object holding only the declared fields, so nothing unexpected (like `__proto__`) leaks through.
 */
export function object<F extends Fields> (fields: F): Schema<{ [K in keyof ObjectOf<F>]: ObjectOf<F>[K] }> {
  const known = new Set(Object.keys(fields))
  return (value, path = '$') => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'expected an object')
    const input = value as Record<string, unknown>
    for (const key of Object.keys(input)) {
      if (!known.has(key)) fail(`${path}.${key.length > 64 ? key.slice(0, 64) + '…' : key}`, 'unexpected field')
    }
    const out: Record<string, unknown> = {}
    for (const [key, schema] of Object.entries(fields)) {
      const present = Object.prototype.hasOwnProperty.call(input, key)
      if (!present && !(OPTIONAL in schema)) fail(`${path}.${key}`, 'missing')
      const parsed = schema(present ? input[key] : undefined, `${path}.${key}`)
      if (parsed !== undefined) out[key] = parsed
    }
    return out as { [K in keyof ObjectOf<F>]: ObjectOf<F>[K] }
  }
}

/**
 * One of several object schemas told apart by a string `type` field, e.g. the messages a
 * protocol may receive at one step.
 */
export function tagged<M extends Record<string, Schema<unknown>>> (variants: M): Schema<Infer<M[keyof M]>> {
  return (value, path = '$') => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'expected an object')
    const tag = (value as Record<string, unknown>).type
    if (typeof tag !== 'string' || !Object.prototype.hasOwnProperty.call(variants, tag)) {
      fail(`${path}.type`, `expected one of ${Object.keys(variants).join(', ')}`)
    }
    return variants[tag](value, path) as Infer<M[keyof M]>
  }
}
