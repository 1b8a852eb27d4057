// JSON Schemas of control API results, for rpc_discover (OpenRPC content descriptors). Each method
// declares its result with these helpers next to its params; the schema says what the handler
// returns as JSON (bigints as decimal strings, bytes as 0x hex: see toJson in server.ts).
import { ADDRESS_PATTERN, BYTES32_PATTERN } from './params.ts'

export type JsonSchema = Record<string, unknown>

/** An object; every property is required unless named in `optional`. */
export function object (properties: Record<string, JsonSchema>, o: { optional?: readonly string[], description?: string } = {}): JsonSchema {
  const optional = o.optional ?? []
  return {
    type: 'object',
    ...(o.description !== undefined && { description: o.description }),
    properties,
    required: Object.keys(properties).filter(k => !optional.includes(k))
  }
}

export function array (items: JsonSchema, description?: string): JsonSchema {
  return { type: 'array', items, ...(description !== undefined && { description }) }
}

export function nullable (s: JsonSchema): JsonSchema {
  return { oneOf: [s, { type: 'null' }] }
}

export const string = (description?: string): JsonSchema => ({ type: 'string', ...(description !== undefined && { description }) })
export const integer = (description?: string): JsonSchema => ({ type: 'integer', ...(description !== undefined && { description }) })
export const number = (description?: string): JsonSchema => ({ type: 'number', ...(description !== undefined && { description }) })
export const boolean = (description?: string): JsonSchema => ({ type: 'boolean', ...(description !== undefined && { description }) })
export const hex = (description?: string): JsonSchema => ({ type: 'string', pattern: '^0x([0-9a-f]{2})*$', ...(description !== undefined && { description }) })
export const bytes32 = (description?: string): JsonSchema => ({ type: 'string', pattern: BYTES32_PATTERN, ...(description !== undefined && { description }) })
export const address = (description?: string): JsonSchema => ({ type: 'string', pattern: ADDRESS_PATTERN, ...(description !== undefined && { description }) })
/** A big integer (wei, gas, bytes) as a decimal string. */
export const decimal = (description?: string): JsonSchema => ({ type: 'string', pattern: '^[0-9]+$', ...(description !== undefined && { description }) })
/** An object of any keys whose values all match `values` (e.g. contract name -> address). */
export function record (values: JsonSchema, description: string): JsonSchema {
  return { type: 'object', additionalProperties: values, description }
}

/** An object whose fields this schema does not pin down. Not for a result: rpc_discover must say what a method returns (test/integration/daemon/openrpc.test.ts). */
export const anyObject = (description: string): JsonSchema => ({ type: 'object', description })

/** `{ ok: true }` and more. */
export function ok (more: Record<string, JsonSchema> = {}): JsonSchema {
  return object({ ok: { const: true }, ...more })
}

/** A peer as the p2p host reports it. */
export const peer: JsonSchema = object({
  peerId: string('libp2p peer id'),
  addresses: array(string('multiaddr')),
  direct: boolean('whether a direct connection is open (not only one through a relay); admin_peers only')
}, { optional: ['direct'] })
