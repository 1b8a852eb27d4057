// The wire messages of /sdte/echo/1. One JSON frame each way:
//   client -> server  EchoRequest   then the client closes its side
//   server -> client  EchoResponse  then the server closes its side
import { schema as s } from '../messages/index.ts'
import type { Infer } from '../messages/index.ts'
import { MAX_TEXT_LENGTH } from './constants.ts'

const MAX_REQUEST_ID = 2 ** 32 - 1

export const EchoRequest = s.object({
  type: s.literal('echo-request'),
  id: s.number({ min: 0, max: MAX_REQUEST_ID }),
  text: s.string({ maxLength: MAX_TEXT_LENGTH })
})
export type EchoRequest = Infer<typeof EchoRequest>

export const EchoResponse = s.object({
  type: s.literal('echo-response'),
  id: s.number({ min: 0, max: MAX_REQUEST_ID }),
  text: s.string({ maxLength: MAX_TEXT_LENGTH }),
  /** The peer id the server saw the request come from (lets a client check what it looks like remotely). */
  seenFrom: s.string({ maxLength: 128 })
})
export type EchoResponse = Infer<typeof EchoResponse>
