// The buyer's analysis: EVM runtime bytecode given as hex, or read from a file.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { getBytes } from 'ethers'
import { MAX_CODE_SIZE } from '../../../enclave/index.ts'
import { appError } from '../../rpc/errors.ts'

/** Bytecode from hex, or from a file: a compiled artifact (deployedBytecode) or plain hex. */
export function loadCode (p: { code?: string, codePath?: string }): Uint8Array {
  let hex: string
  if (p.code !== undefined) {
    hex = p.code
  } else if (p.codePath !== undefined) {
    let text: string
    try {
      text = readFileSync(resolve(p.codePath), 'utf8').trim()
    } catch (err) {
      throw appError('Rejected', `cannot read ${p.codePath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { param: 'codePath' })
    }
    if (text.startsWith('{')) {
      let artifact: { deployedBytecode?: unknown }
      try { artifact = JSON.parse(text) } catch { throw appError('Rejected', `${p.codePath} is not JSON`, { param: 'codePath' }) }
      if (typeof artifact.deployedBytecode !== 'string') throw appError('Rejected', `${p.codePath} has no deployedBytecode`, { param: 'codePath' })
      hex = artifact.deployedBytecode
    } else {
      hex = text
    }
  } else {
    throw appError('Rejected', 'give code (hex bytecode) or codePath (a compiled artifact)', { param: 'code' })
  }
  if (!/^0x([0-9a-fA-F]{2})+$/.test(hex)) throw appError('Rejected', 'code must be 0x-prefixed hex bytecode', { param: 'code' })
  const code = getBytes(hex)
  if (code.length > MAX_CODE_SIZE) throw appError('Rejected', `code of ${code.length} bytes over the enclave's ${MAX_CODE_SIZE}`, { param: 'code' })
  return code
}
