// Unsigned LEB128 varints (the multiformats / protobuf length prefix), written out here because
// the framing must tell "too large", "non-canonical" and "truncated" apart, which a generic
// decoder does not.
import { MAX_VARINT_BYTES } from './constants.ts'

export function encodeVarint (value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError('varint value must be a non-negative safe integer')
  const out: number[] = []
  let v = value
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
  return Uint8Array.from(out)
}

export type VarintResult =
  | { kind: 'value', value: number, bytes: number }
  | { kind: 'incomplete' }
  | { kind: 'overlong' }
  | { kind: 'non-canonical' }

/** Decodes a varint from the start of `buf` without throwing; says why when it cannot. */
export function decodeVarint (buf: Uint8Array): VarintResult {
  let value = 0
  let scale = 1
  for (let i = 0; i < buf.length; i++) {
    if (i >= MAX_VARINT_BYTES) return { kind: 'overlong' }
    const b = buf[i]
    value += (b & 0x7f) * scale
    scale *= 0x80
    if ((b & 0x80) === 0) {
      // A trailing zero byte after the first means the same number has a shorter encoding.
      if (b === 0 && i > 0) return { kind: 'non-canonical' }
      return { kind: 'value', value, bytes: i + 1 }
    }
  }
  if (buf.length >= MAX_VARINT_BYTES) return { kind: 'overlong' }
  return { kind: 'incomplete' }
}
