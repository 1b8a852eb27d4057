// The server side of /sdte/echo/1: read one request, answer it, expect the client's clean end.
import { messageChannel } from '../messages/index.ts'
import { ProtocolViolationError } from '../errors.ts'
import { EchoRequest } from './schema.ts'
import type { EchoResponse } from './schema.ts'
import type { ProtocolHandlerContext } from '../host/index.ts'
import type { Stream } from '@libp2p/interface'

export interface EchoHandlerOptions {
  maxMessageBytes: number
  messageTimeoutMs: number
}

export async function handleEcho (stream: Stream, context: ProtocolHandlerContext, options: EchoHandlerOptions): Promise<void> {
  const channel = messageChannel(stream, { ...options, signal: context.signal })
  const request = await channel.read(EchoRequest)
  const response: EchoResponse = { type: 'echo-response', id: request.id, text: request.text, seenFrom: context.remotePeer }
  await channel.write(response)
  // One request per stream: anything more is a protocol violation (and resets the stream).
  if (await channel.readOrEnd(EchoRequest) !== undefined) {
    const err = new ProtocolViolationError('more than one echo request on a stream')
    channel.abort(err)
    throw err
  }
  await channel.close()
}
