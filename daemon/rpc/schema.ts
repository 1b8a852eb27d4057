// The JSON Schema subset the control API declares its params in, and the one check the server runs
// on them: the schema rpc_discover serves is the schema the request is checked against, so the two
// cannot disagree. Semantics follow JSON Schema (draft 7, as OpenRPC 1.2 uses it) and ajv's defaults:
// string lengths count Unicode code points, patterns are Unicode regular expressions, `minimum` applies
// to numbers only and `pattern` to strings only. A keyword outside this subset is refused when a method
// registers (assertSupported), never silently ignored.

export type JsonSchema = Record<string, unknown>

const KEYWORDS = new Set([
  'type', 'description', 'title', 'const', 'enum', 'minLength', 'maxLength', 'pattern', 'minimum', 'maximum',
  'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems', 'oneOf'
])
const TYPES = new Set(['string', 'integer', 'number', 'boolean', 'object', 'array', 'null'])

export class UnsupportedSchemaError extends Error {
  override name = 'UnsupportedSchemaError'
}

/** Throws when the schema uses a keyword or type the validator below does not check. */
export function assertSupported (s: JsonSchema, at = '#'): void {
  for (const k of Object.keys(s)) if (!KEYWORDS.has(k)) throw new UnsupportedSchemaError(`${at}: keyword ${k} is not checked by daemon/rpc/schema.ts`)
  const types = s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type]
  for (const t of types) if (!TYPES.has(t as string)) throw new UnsupportedSchemaError(`${at}: type ${String(t)}`)
  if (typeof s.properties === 'object' && s.properties !== null) {
    for (const [k, v] of Object.entries(s.properties)) assertSupported(v as JsonSchema, `${at}/properties/${k}`)
  }
  if (typeof s.additionalProperties === 'object') assertSupported(s.additionalProperties as JsonSchema, `${at}/additionalProperties`)
  if (typeof s.items === 'object' && s.items !== null) assertSupported(s.items as JsonSchema, `${at}/items`)
  if (Array.isArray(s.oneOf)) s.oneOf.forEach((o, i) => assertSupported(o as JsonSchema, `${at}/oneOf/${i}`))
}

function typeOf (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}

function hasType (v: unknown, t: string): boolean {
  switch (t) {
    case 'integer': return typeof v === 'number' && Number.isInteger(v)
    case 'number': return typeof v === 'number' && Number.isFinite(v)
    case 'object': return v !== null && typeof v === 'object' && !Array.isArray(v)
    case 'array': return Array.isArray(v)
    case 'null': return v === null
    default: return typeof v === t
  }
}

const patterns = new Map<string, RegExp>()
function regex (p: string): RegExp {
  let r = patterns.get(p)
  if (r === undefined) { r = new RegExp(p, 'u'); patterns.set(p, r) }
  return r
}

/** Why `v` does not match the schema (the first reason found, with its path), or undefined if it does. */
export function validate (s: JsonSchema, v: unknown, at = ''): string | undefined {
  const where = at === '' ? '' : `${at}: `
  if (s.type !== undefined) {
    const types = (Array.isArray(s.type) ? s.type : [s.type]) as string[]
    if (!types.some(t => hasType(v, t))) return `${where}expected ${types.join(' or ')}, got ${typeOf(v)}`
  }
  if ('const' in s && JSON.stringify(v) !== JSON.stringify(s.const)) return `${where}must be ${JSON.stringify(s.const)}`
  if (Array.isArray(s.enum) && !s.enum.some(e => e === v)) return `${where}must be one of ${s.enum.join(', ')}`
  if (typeof v === 'string') {
    const length = [...v].length
    if (typeof s.minLength === 'number' && length < s.minLength) return `${where}${s.minLength === 1 ? 'must not be empty' : `shorter than ${s.minLength} characters`}`
    if (typeof s.maxLength === 'number' && length > s.maxLength) return `${where}longer than ${s.maxLength} characters`
    if (typeof s.pattern === 'string' && !regex(s.pattern).test(v)) return `${where}${typeof s.description === 'string' ? `expected ${s.description}` : `does not match ${s.pattern}`}`
  }
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && v < s.minimum) return `${where}must be at least ${s.minimum}`
    if (typeof s.maximum === 'number' && v > s.maximum) return `${where}must be at most ${s.maximum}`
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) return `${where}fewer than ${s.minItems} items`
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) return `${where}more than ${s.maxItems} items`
    if (typeof s.items === 'object' && s.items !== null) {
      for (let i = 0; i < v.length; i++) {
        const why = validate(s.items as JsonSchema, v[i], `${at}[${i}]`)
        if (why !== undefined) return why
      }
    }
  }
  if (hasType(v, 'object')) {
    const o = v as Record<string, unknown>
    const props = (s.properties ?? {}) as Record<string, JsonSchema>
    for (const k of (s.required ?? []) as string[]) if (!(k in o)) return `${where}missing field ${k}`
    for (const [k, x] of Object.entries(o)) {
      const p = props[k]
      if (p !== undefined) {
        const why = validate(p, x, at === '' ? k : `${at}.${k}`)
        if (why !== undefined) return why
      } else if (s.additionalProperties === false) {
        return `${where}unknown field ${k}`
      } else if (typeof s.additionalProperties === 'object') {
        const why = validate(s.additionalProperties as JsonSchema, x, at === '' ? k : `${at}.${k}`)
        if (why !== undefined) return why
      }
    }
  }
  if (Array.isArray(s.oneOf)) {
    const matching = s.oneOf.filter(o => validate(o as JsonSchema, v, at) === undefined).length
    if (matching !== 1) return `${where}${matching === 0 ? 'matches none of the allowed forms' : 'matches more than one allowed form'}`
  }
  return undefined
}
