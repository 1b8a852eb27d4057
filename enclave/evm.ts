// The confined EVM: runs the buyer's `analyze(bytes[] inputs) returns (bytes)` on the sellers'
// plaintext inside the enclave, and nothing else.
//  - Refused, not executed (status 3, Forbidden): CALL, CALLCODE, DELEGATECALL, CREATE, CREATE2,
//    SELFDESTRUCT, SSTORE, TSTORE, and STATICCALL to anything but the standard precompiles
//    0x01..0x04 and the analytics precompiles (enclave/precompiles.ts). The refusal replaces the
//    opcode's handler, so the opcode never runs; the frame halts exceptionally and consumes its gas.
//  - Allowed: everything that only reads the empty, throw-away state (SLOAD, BALANCE, ...) and LOG*:
//    logs are dropped with the EVM after the run, so they reach nobody (only the return value leaves,
//    encrypted to the buyer).
//  - A fresh EVM and empty state per run: nothing survives the call.
//  - Gas cap, output cap: status 2 (OutOfGas) and 4 (OutputOverCap). Any other exceptional halt
//    (REVERT, invalid opcode or jump, stack errors) is status 1 (Reverted).
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { Common, Hardfork } from '@ethereumjs/common'
import type { EVM, EVMOpts, ExecResult, PrecompileFunc, PrecompileInput, paramsEVM } from '@ethereumjs/evm'
import { getBytes, toUtf8Bytes } from 'ethers/utils'
import { keccak256 } from 'ethers/crypto'
import { ResultStatus } from '../contracts/formats.ts'
import type { ResultStatusCode } from '../contracts/formats.ts'
import {
  DEFAULT_GAS_CAP, DEFAULT_OUTPUT_CAP, EVM_HARDFORK, MAX_EVM_MEMORY, MAX_GAS_CAP, MAX_OUTPUT_CAP, MAX_TOTAL_INPUT_SIZE, MEMORY_QUAD_COEFF_DIV
} from './constants.ts'
import { makePrecompile, MAX_CSV_RECORDS, PRECOMPILE_ADDRESSES, precompileTable, PRIVATE_PRECOMPILE_ADDRESSES } from './precompiles.ts'
import type { PrecompileName, PrivatePrecompileName } from './precompiles.ts'
import { makePrivatePrecompile, privatePrecompileTable, PrivateRun } from './private.ts'
import type { RunPrivacy } from './messages.ts'

/** Opcodes refused by the confined EVM, by number. */
export const FORBIDDEN_OPCODES: Record<number, string> = {
  0x55: 'SSTORE',
  0x5d: 'TSTORE',
  0xf0: 'CREATE',
  0xf1: 'CALL',
  0xf2: 'CALLCODE',
  0xf4: 'DELEGATECALL',
  0xf5: 'CREATE2',
  0xff: 'SELFDESTRUCT'
}
const STATICCALL = 0xfa
const CALLDATACOPY = 0x37
/**
 * Standard precompiles a STATICCALL may reach, each with the factor its standard gas is multiplied
 * by in the confined EVM, so that its worst input costs at most MAX_CPU_MS_PER_MGAS of CPU
 * (bench/enclave/precompiles.ts, BENCHMARKS.md "Precompiles"):
 *  - 0x01 ecrecover ×5: 3,000 gas is about 2.2 ms of CPU here (noble secp256k1 in JS), ~700 ms/Mgas;
 *    15,000 gas brings it near 150. Kept: checking signed records is a plausible analysis.
 *  - 0x02 sha256, 0x03 ripemd160, 0x04 identity ×1: far under the bound at standard prices.
 * Not reachable (STATICCALL is Forbidden, and the EVM's table drops them): 0x05 modexp (small moduli
 * with long exponents ~370 ms/Mgas, and it allocates its declared lengths, up to 2 GiB, before its
 * arithmetic), 0x06-0x08 bn254 add/mul/pairing (mul ~400 ms/Mgas), 0x09 blake2f (~370-620 ms/Mgas a
 * round): zk and protocol verification, which no data analysis needs; refusing them is simpler and
 * safer than keeping our own price schedules for them. 0x0a KZG needs a trusted setup we do not load.
 */
export const STANDARD_PRECOMPILE_GAS_FACTOR: Readonly<Record<number, bigint>> = { 1: 5n, 2: 1n, 3: 1n, 4: 1n }
/** Standard precompiles a STATICCALL may reach. */
export const STANDARD_PRECOMPILES = Object.keys(STANDARD_PRECOMPILE_GAS_FACTOR).map(Number)
/** Standard precompiles of the hardfork that the confined EVM removes from its table. */
export const DISABLED_STANDARD_PRECOMPILES = [5, 6, 7, 8, 9, 10]

/** `analyze(bytes[])` selector. */
export const ANALYZE_SELECTOR = getBytes(keccak256(toUtf8Bytes('analyze(bytes[])'))).subarray(0, 4)
/** Where the analysis code runs (its ADDRESS); a fixed value so runs are identical across nodes. */
export const ANALYSIS_ADDRESS = '0x00000000000000000000000000000000005d7e00'

export interface RunLimits { gasCap: bigint, outputCap: bigint }

export interface RunOutcome {
  status: ResultStatusCode
  /** The decoded `bytes` the analysis returned; empty unless status is Ok. */
  output: Uint8Array
  gasUsed: bigint
  /**
   * Why it stopped, inside the enclave: e.g. 'CALL', 'revert', 'out of gas'. It depends on the data (the code
   * may branch on it), so it leaves the enclave only in the buyer's encrypted diagnosis (crypto.ts encryptDiagnosis).
   */
  reason: string
  /** Forbidden: the refused opcode and its position (program counter) in the analysis code. */
  opcode?: string
  pc?: number
  /** OutputOverCap: the size of the output the run returned, in bytes. */
  outputSize?: number
}

const evmPackageVersion: string = (() => {
  const require = createRequire(import.meta.url)
  let dir = dirname(require.resolve('@ethereumjs/evm'))
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
      if (pkg.name === '@ethereumjs/evm') return String(pkg.version)
    } catch {}
    dir = dirname(dir)
  }
  return 'unknown'
})()

/** The EVM configuration: hashed into the measurement together with the enclave's code. */
export function evmConfiguration (): Record<string, unknown> {
  return {
    engine: `@ethereumjs/evm@${evmPackageVersion}`,
    hardfork: EVM_HARDFORK,
    memoryQuadCoeffDiv: String(MEMORY_QUAD_COEFF_DIV),
    maxMemory: MAX_EVM_MEMORY,
    maxCsvRecords: MAX_CSV_RECORDS,
    engineFixes: ['memory growth doubling', 'CALLDATACOPY zero padding without array spread'],
    forbiddenOpcodes: Object.values(FORBIDDEN_OPCODES),
    staticcallTargets: STANDARD_PRECOMPILES,
    standardGasFactors: Object.fromEntries(Object.entries(STANDARD_PRECOMPILE_GAS_FACTOR).map(([a, f]) => [a, String(f)])),
    disabledPrecompiles: DISABLED_STANDARD_PRECOMPILES,
    precompiles: precompileTable(),
    privatePrecompiles: privatePrecompileTable(),
    privateCallData: 'analyze(bytes[]) with no inputs',
    caps: {
      defaultGas: String(DEFAULT_GAS_CAP),
      maxGas: String(MAX_GAS_CAP),
      defaultOutput: String(DEFAULT_OUTPUT_CAP),
      maxOutput: String(MAX_OUTPUT_CAP),
      maxInput: MAX_TOTAL_INPUT_SIZE
    },
    entry: 'analyze(bytes[])',
    address: ANALYSIS_ADDRESS
  }
}

/** The engine's packages, loaded by loadEngine. */
interface Engine {
  common: typeof import('@ethereumjs/common')
  evm: typeof import('@ethereumjs/evm')
  util: typeof import('@ethereumjs/util')
}
let engine: Engine | undefined

/**
 * The engine (@ethereumjs/evm, its common and util: about 190 modules), loaded when the first EVM is made. The
 * enclave worker imports this file for evmConfiguration (its measurement) and types, but runs no EVM itself (runs
 * happen in their own threads, enclave/runs.ts): a node's worker so boots without it (issue 13, a lighter daemon).
 */
async function loadEngine (): Promise<Engine> {
  if (engine === undefined) {
    const [common, evm, util] = await Promise.all([import('@ethereumjs/common'), import('@ethereumjs/evm'), import('@ethereumjs/util')])
    engine = { common, evm, util }
  }
  return engine
}

/** The EVM's parameter table with our memory pricing (the EVM applies it over the Common's). */
function makeParams (e: Engine): typeof paramsEVM {
  const params = JSON.parse(JSON.stringify(e.evm.paramsEVM, (_k, v) => typeof v === 'bigint' ? Number(v) : v))
  params['1'].quadCoefficientDivGas = Number(MEMORY_QUAD_COEFF_DIV)
  return params
}

function makeCommon (e: Engine, params: typeof paramsEVM): Common {
  return new e.common.Common({ chain: e.common.Mainnet, hardfork: EVM_HARDFORK as Hardfork, params })
}

let memoryPatched = false

/**
 * @ethereumjs/evm's Memory grows by re-copying the whole buffer in 8 KiB steps, which makes a
 * contract that grows memory word by word cost O(n²) time for O(n) gas (a CPU DoS, and slow for
 * honest large inputs). Inside the enclave we replace its growth with amortised doubling; the
 * visible EVM semantics (MSIZE, gas) are unchanged, since they are tracked apart from the buffer.
 * Growth past MAX_EVM_MEMORY halts the frame as out of gas (the gas was charged just before).
 */
async function patchMemoryGrowth (e: Engine, evm: EVM): Promise<void> {
  const { EVMError } = e.evm
  if (memoryPatched) return
  const probe = await evm.runCode({ code: Uint8Array.of(0x00), gasLimit: 100n })
  const proto = Object.getPrototypeOf(probe.runState!.memory) as { extend: (offset: number, size: number) => void }
  const HEADROOM = 64 * 1024 * 1024
  proto.extend = function (this: { _store: Uint8Array }, offset: number, size: number): void {
    if (size === 0) return
    const needed = Math.ceil((offset + size) / 32) * 32
    if (needed <= this._store.length) return
    if (needed > MAX_EVM_MEMORY) throw new EVMError(EVMError.errorMessages.OUT_OF_GAS)
    let cap = Math.min(Math.max(needed, this._store.length * 2), needed + HEADROOM, MAX_EVM_MEMORY)
    cap = Math.ceil(cap / 8192) * 8192
    const next = new Uint8Array(cap)
    next.set(this._store)
    this._store = next
  }
  memoryPatched = true
}

type CustomOpcode = NonNullable<EVMOpts['customOpcodes']>[number]
type CustomPrecompile = NonNullable<EVMOpts['customPrecompiles']>[number]

const precompileAddress = (e: Engine, n: number) => e.util.createAddressFromString('0x' + n.toString(16).padStart(40, '0'))

/**
 * Our precompiles as the EVM calls them: a failure's error made the engine's EVMError (enclave/precompiles.ts makes
 * its failures without the engine, PRECOMPILE_FAILURE).
 */
function engineFailure (e: Engine, fn: (input: PrecompileInput) => ExecResult): PrecompileFunc {
  return (input: PrecompileInput) => {
    const r = fn(input)
    if (r.exceptionError === undefined) return r
    return { ...r, exceptionError: new e.evm.EVMError(r.exceptionError.error) }
  }
}

/**
 * A standard precompile charging `factor` times its standard gas. The original runs with a gas limit
 * of limit / factor: every @ethereumjs precompile compares its price with its gas limit before it
 * works, so the work still happens only once factor × price is paid. A failure consumes all the gas.
 */
function repriced (original: PrecompileFunc, factor: bigint): PrecompileFunc {
  if (factor === 1n) return original
  return async (input: PrecompileInput) => {
    const r = await original({ ...input, gasLimit: input.gasLimit / factor })
    if (r.exceptionError !== undefined) return { ...r, executionGasUsed: input.gasLimit }
    return { ...r, executionGasUsed: r.executionGasUsed * factor }
  }
}

/** Our precompile table's changes: repriced and removed standard ones, the analytics ones, and in a private run the private ones. */
function customPrecompiles (e: Engine, common: Common, privateRun?: PrivateRun): CustomPrecompile[] {
  const standard = e.evm.getActivePrecompiles(common)
  const table: CustomPrecompile[] = []
  for (const [n, factor] of Object.entries(STANDARD_PRECOMPILE_GAS_FACTOR)) {
    const address = precompileAddress(e, Number(n))
    const original = standard.get(address.toString().slice(2))
    if (original === undefined) throw new Error(`standard precompile ${n} missing in ${EVM_HARDFORK}`)
    if (factor !== 1n) table.push({ address, function: repriced(original, factor) })
  }
  for (const n of DISABLED_STANDARD_PRECOMPILES) table.push({ address: precompileAddress(e, n) })
  for (const name of Object.keys(PRECOMPILE_ADDRESSES) as PrecompileName[]) {
    table.push({ address: e.util.createAddressFromString(PRECOMPILE_ADDRESSES[name]), function: engineFailure(e, makePrecompile(name)) })
  }
  if (privateRun !== undefined) {
    for (const name of Object.keys(PRIVATE_PRECOMPILE_ADDRESSES) as PrivatePrecompileName[]) {
      table.push({ address: e.util.createAddressFromString(PRIVATE_PRECOMPILE_ADDRESSES[name]), function: engineFailure(e, makePrivatePrecompile(name, privateRun)) })
    }
  }
  return table
}
interface RunContext { violation?: string, pc?: number }

/**
 * A confined EVM as runAnalysis makes it (opcodes, precompile table, memory bound); exported for the
 * benchmark of precompiles, which calls them through the EVM's own table.
 */
export async function createConfinedEvm (ctx: RunContext = {}, privateRun?: PrivateRun): Promise<EVM> {
  const e = await loadEngine()
  const { EVMError } = e.evm
  const params = makeParams(e)
  const common = makeCommon(e, params)
  const base = e.evm.getOpcodesForHF(common)
  const allowed = new Set<bigint>([...STANDARD_PRECOMPILES.map(BigInt), ...Object.values(PRECOMPILE_ADDRESSES).map(a => BigInt(a))])
  if (privateRun !== undefined) for (const a of Object.values(PRIVATE_PRECOMPILE_ADDRESSES)) allowed.add(BigInt(a))
  // The interpreter has moved the program counter past the opcode when it calls the opcode's logic.
  const refuse = (name: string) => (runState: { programCounter: number }) => {
    ctx.violation = name
    ctx.pc = runState.programCounter - 1
    throw new EVMError(EVMError.errorMessages.INVALID_OPCODE)
  }
  const customOpcodes: CustomOpcode[] = Object.entries(FORBIDDEN_OPCODES).map(([op, name]) => ({
    opcode: Number(op), opcodeName: name, baseFee: 0, logicFunction: refuse(name) as any
  }))
  const staticcall = base.opcodeMap[STATICCALL]
  const gasHandler = staticcall.gasHandler as (runState: any, gas: bigint, common: Common) => Promise<bigint> | bigint
  customOpcodes.push({
    opcode: STATICCALL,
    opcodeName: 'STATICCALL',
    baseFee: staticcall.opcodeInfo.fee,
    // The check runs in the gas handler, which runs before anything of the call happens.
    gasFunction: async (runState: any, gas: bigint, c: Common) => {
      const [, target] = runState.stack.peek(2) as bigint[]
      if (!allowed.has(target)) {
        ctx.violation = 'STATICCALL'
        // The gas handler runs before the interpreter moves past the opcode.
        ctx.pc = runState.programCounter
        throw new EVMError(EVMError.errorMessages.INVALID_OPCODE)
      }
      return await gasHandler(runState, gas, c)
    },
    logicFunction: staticcall.opHandler as any
  })
  // CALLDATACOPY past the end of the call data (Solidity zero-fills new memory that way) pads with
  // an array spread in @ethereumjs/util that is slow and fails ("Invalid array length") beyond a
  // few hundred MB; same semantics and the same gas, copied straight into memory and zero-filled.
  const calldatacopy = base.opcodeMap[CALLDATACOPY]
  customOpcodes.push({
    opcode: CALLDATACOPY,
    opcodeName: 'CALLDATACOPY',
    baseFee: calldatacopy.opcodeInfo.fee,
    gasFunction: calldatacopy.gasHandler as any,
    logicFunction: (runState: any) => {
      const [memOffset, dataOffset, dataLength] = runState.stack.popN(3) as bigint[]
      if (dataLength === 0n) return
      const callData = runState.interpreter.getCallData() as Uint8Array
      const length = Number(dataLength)
      const at = Number(memOffset)
      // Straight into the memory buffer (no intermediate copy: at 64 MiB of inputs each copy counts).
      runState.memory.extend(at, length)
      const store = runState.memory._store as Uint8Array
      let copied = 0
      if (dataOffset < BigInt(callData.length)) {
        const start = Number(dataOffset)
        const part = callData.subarray(start, Math.min(callData.length, start + length))
        store.set(part, at)
        copied = part.length
      }
      store.fill(0, at + copied, at + length)
    }
  })
  const evm = await e.evm.createEVM({
    common,
    params,
    customOpcodes,
    customPrecompiles: customPrecompiles(e, common, privateRun)
  })
  await patchMemoryGrowth(e, evm)
  return evm
}

/** Call data of `analyze(bytes[] inputs)`, encoded directly (the inputs may be tens of MiB). */
export function encodeAnalyzeCall (inputs: Uint8Array[]): Uint8Array {
  const padded = (n: number) => Math.ceil(n / 32) * 32
  const headSize = 32 + 32 * inputs.length
  let size = 4 + 32 + headSize
  for (const input of inputs) size += 32 + padded(input.length)
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  const word = (at: number, v: number) => { view.setUint32(at + 28, v) }
  out.set(ANALYZE_SELECTOR, 0)
  word(4, 32)
  word(36, inputs.length)
  let tail = 32 * inputs.length
  let at = 4 + 32 + 32
  inputs.forEach((input, i) => {
    word(at + 32 * i, tail)
    const pos = 4 + 32 + 32 + tail
    word(pos, input.length)
    out.set(input, pos + 32)
    tail += 32 + padded(input.length)
  })
  return out
}

/** Decodes return data that must be `abi.encode(bytes)`; undefined when it is not. */
export function decodeBytesReturn (ret: Uint8Array): Uint8Array | undefined {
  if (ret.length < 64) return undefined
  const view = new DataView(ret.buffer, ret.byteOffset, ret.byteLength)
  for (let i = 0; i < 28; i++) if (ret[i] !== 0 || ret[32 + i] !== 0) return undefined
  const off = view.getUint32(28)
  if (off !== 32) return undefined
  const len = view.getUint32(60)
  if (64 + len > ret.length) return undefined
  return ret.subarray(64, 64 + len)
}

/**
 * Runs the analysis. Never throws for anything the code does; a failure of the engine is status Internal.
 * With `privacy` (a private run) the analysis gets `analyze(bytes[])` with no inputs: the sellers' records reach
 * only the private precompiles, which this run's table then holds (docs/enclave.md "Private mode").
 */
export async function runAnalysis (code: Uint8Array, inputs: Uint8Array[], limits: RunLimits, privacy?: RunPrivacy): Promise<RunOutcome> {
  const ctx: RunContext = {}
  try {
    const privateRun = privacy === undefined ? undefined : new PrivateRun(privacy, inputs)
    const evm = await createConfinedEvm(ctx, privateRun)
    const { evm: { EVMError }, util: { createAddressFromString } } = await loadEngine()
    const res = await evm.runCode({
      code,
      data: encodeAnalyzeCall(privateRun === undefined ? inputs : []),
      gasLimit: limits.gasCap,
      to: createAddressFromString(ANALYSIS_ADDRESS)
    })
    const gasUsed = res.executionGasUsed
    const empty = new Uint8Array(0)
    if (ctx.violation !== undefined) return { status: ResultStatus.Forbidden, output: empty, gasUsed, reason: ctx.violation, opcode: ctx.violation, ...(ctx.pc !== undefined && { pc: ctx.pc }) }
    const err = res.exceptionError
    if (err !== undefined) {
      if (err.error === EVMError.errorMessages.OUT_OF_GAS) return { status: ResultStatus.OutOfGas, output: empty, gasUsed, reason: err.error }
      return { status: ResultStatus.Reverted, output: empty, gasUsed, reason: err.error }
    }
    const output = decodeBytesReturn(res.returnValue)
    if (output === undefined) return { status: ResultStatus.Reverted, output: empty, gasUsed, reason: 'return data is not abi-encoded bytes' }
    if (BigInt(output.length) > limits.outputCap) return { status: ResultStatus.OutputOverCap, output: empty, gasUsed, reason: `output of ${output.length} bytes over the cap`, outputSize: output.length }
    return { status: ResultStatus.Ok, output: Uint8Array.from(output), gasUsed, reason: 'ok' }
  } catch (err) {
    return { status: ResultStatus.Internal, output: new Uint8Array(0), gasUsed: 0n, reason: `engine error: ${(err as Error).message}` }
  }
}
