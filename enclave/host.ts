// The host side of the simulated enclave: starts the worker, forwards typed requests to it, serves
// its store ocalls from the daemon's SealedBlobStore, and never sees a secret it did not already
// hold (the simulated platform's keys, passed in at start as SGX would have them fused in hardware).
// With idleStopMs it stops the worker while it is idle and holds no task, and starts a new one on the same
// store for the next request (docs/enclave.md "Idle stop").
import { Worker } from 'node:worker_threads'
import type { ResourceLimits } from 'node:worker_threads'
import { silentLogger, type ComponentLogger } from '../config/index.ts'
import { DATA_CHUNKS_IN_FLIGHT, DEFAULT_EXECUTE_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS } from './constants.ts'
import { toBytes } from './crypto.ts'
import { EnclaveBuildChangedError, EnclaveClosedError, EnclaveTimeoutError, InvalidRequestError, RunOverBudgetError, deserializeError } from './errors.ts'
import type {
  AttestRequest, AttestResponse, ExecuteResponse, HostMessage, Request, ResponseMap, RunBudgetPolicy, SellerDataStatus, TaskSummary,
  WorkerInit, WorkerMessage
} from './messages.ts'
import { runBudgetPolicy } from './runs.ts'
import { MemoryBlobStore } from './store.ts'
import { networkDomainKey, type NetworkDomain } from '../contracts/index.ts'
import type { SealedBlobStore } from './store.ts'

export interface EnclaveOptions {
  /** Private key (hex) of the simulated attestation service, the "attestation root". Required. */
  attestationKey: string
  /** The deployment (chain id, DTMC address) the enclave's tasks are for: in every digest it signs. Required. */
  domain: NetworkDomain
  /**
   * The account of the node that runs the enclave (its payee on DTMC), named in every quote's report data: a quote
   * verifies only for that account, so a peer cannot hand over this enclave's quotes as its own. Required.
   */
  operator: string
  /** The per-machine 32-byte platform secret (bytes or hex). Required. */
  platformSecret: Uint8Array | string
  /** Where sealed state goes. Default: a MemoryBlobStore (lost on exit). */
  store?: SealedBlobStore
  /**
   * Per-request timeout, except execute. Default DEFAULT_REQUEST_TIMEOUT_MS. A request that times out
   * fails with EnclaveTimeoutError and stops the worker (it would hold up every later request);
   * start a new enclave on the same store to resume.
   */
  requestTimeoutMs?: number
  /**
   * How long to wait for the answer to one execute request. Default DEFAULT_EXECUTE_TIMEOUT_MS. A
   * backstop only: the enclave ends every run at its budget (runBudget); the run happens in its own
   * thread, so a late answer fails with EnclaveTimeoutError but does not stop the worker.
   */
  executeTimeoutMs?: number
  /**
   * How each run's time and heap budget follow from its gas cap (enclave/runs.ts). Default
   * DEFAULT_RUN_BUDGET_POLICY (constants.ts, "Budget of one run"); any field may be overridden.
   */
  runBudget?: Partial<RunBudgetPolicy>
  /**
   * Simulates another enclave build (tests only): mixed into the measurement. Default ''. A function is asked at
   * each thread start, as the build's files on disk are read at each start (a test changes the build that way).
   */
  variant?: string | (() => string)
  /** Test-only fault (see WorkerInit.faultWrongResult). Default false. */
  faultWrongResult?: boolean
  /** V8 heap limits of the worker thread. Default: Node's. */
  resourceLimits?: ResourceLimits
  /**
   * Stop the worker thread once it holds no task and no request (other than `tasks`) came for this long; the next
   * request starts a new one on the same store, which resumes from the sealed state as after any restart
   * (docs/enclave.md "Sealed state and restart"). The thread is most of an idle node's memory beyond the daemon's
   * own: a second V8 isolate with the enclave's code (issue 13). Default: never (the thread lives as long as the host).
   */
  idleStopMs?: number
  /**
   * Called each time the thread stopped while idle (idleStopMs): what it held is freed then, long after the trade's
   * last step, and the daemon gives it back to the system (daemon/memory.ts memoryReleaser). Default: nothing.
   */
  onIdleStop?: () => void
}

/** What the daemon hands the enclave host, as js-libp2p hands its components (createP2PHost's second argument). */
export interface EnclaveComponents {
  /** Default: silentLogger (an enclave used on its own logs nothing). */
  logger?: ComponentLogger
}

/** One seller's data delivery (step 7): announced commitment, wrapped data key, encrypted chunks. */
export interface DataDelivery {
  sellerIndex: number
  commitment: string
  /** The data key wrapped to the task key (wrapDataKey). */
  wrappedKey: Uint8Array | string
  /** The seller account's signature over the delivery (signDataKeyDelivery). */
  sellerSignature: string
  /** Signed chunk frames in order (signChunk over encryptDataset / encryptChunks); a stream is fine. */
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>
}

export interface ExecuteOptions {
  /** Sellers of the trade, in trade order 0..n-1. Default: every delivered seller. */
  sellerCount?: number
  /**
   * The trade's caps as DTMC has them: when given, each must equal the run's (the buyer's gas cap; the smallest of
   * the buyer's and sellers' output caps), else CapMismatchError. A node never lowers a run with its own limits.
   */
  gasCap?: bigint
  outputCap?: bigint
  /**
   * The trade's epsilon (micro-epsilon, 1 epsilon = 1,000,000) as DTMC has it: required exactly when the sellers'
   * deliveries carry privacy terms, and equal to the run's (the smallest of theirs), else PrivacyMismatchError.
   */
  privacy?: { epsilon: bigint | string }
}

/**
 * What any enclave backend provides (docs/enclave.md): the simulation here, or an SGX enclave
 * under a library OS with DCAP quotes. Everything outside enclave/ depends only on this.
 */
export interface EnclaveBackend {
  readonly mode: 'sim' | 'sgx'
  /** keccak256 measurement of the enclave build (bytes32 hex). */
  readonly measurement: string
  /** Address of the attestation root that signs this enclave's quotes. */
  readonly attestationRoot: string
  /** Step 4 / 7: quote for the task bound to (tradeId, codeHash); creates the task key on first call. */
  attest: (req: AttestRequest) => Promise<AttestResponse>
  /** Step 4: the buyer's code envelope (encryptCodeForEnclave). */
  deliverCode: (taskId: string, envelope: Uint8Array | string, authorization: { salt: string, signature: string }) => Promise<void>
  /** Step 7: a seller's data; resolves when all chunks are in and match the commitment. */
  deliverData: (taskId: string, delivery: DataDelivery) => Promise<SellerDataStatus>
  /** Step 7: the seller's acknowledgement of its delivery receipt (signReceiptAck); needed before execute. */
  ackReceipt: (taskId: string, sellerIndex: number, signature: string) => Promise<SellerDataStatus>
  /** Step 8: runs the analysis once; later calls return the same signed result. */
  execute: (taskId: string, opts?: ExecuteOptions) => Promise<ExecuteResponse>
  /** The tasks this enclave holds, with their delivery progress. */
  tasks: () => Promise<TaskSummary[]>
  /** The tasks recovered from sealed state at start (and their progress), to continue them. */
  resume: () => Promise<TaskSummary[]>
  /** Forgets a task and deletes its sealed state (after the trade is over). */
  dropTask: (taskId: string) => Promise<void>
  /**
   * Starts the enclave's thread now if it was stopped while idle (idleStopMs), so that a request expected soon (a
   * demand this node may serve) does not wait for its boot; a running thread's idle stop is pushed back as by a
   * request. Never fails (a boot that fails fails the next request).
   */
  warm: () => void
  /** Stops the enclave; pending requests fail with EnclaveClosedError. Sealed state stays. */
  close: () => Promise<void>
}

export type EnclaveHost = EnclaveBackend

interface Pending { resolve: (v: any) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }

/** What the worker said when it was ready. */
interface WorkerReady { measurement: string, attestationRoot: string, tasks: TaskSummary[] }

/** One worker thread of the enclave, from its start to its exit, and the requests it has not answered yet. */
interface EnclaveThread {
  ready: WorkerReady
  call: <O extends Request['op']>(op: O, params: Extract<Request, { op: O }>['params'], timeoutMs: number, transfer?: ArrayBuffer[]) => Promise<ResponseMap[O]>
  /** Ends the thread; its unanswered requests fail with EnclaveClosedError. */
  terminate: (why: string) => Promise<void>
}

interface ThreadHooks {
  /** The thread exited or failed without terminate() (a crash): the host is closed. */
  lost: (err: Error) => void
  /** A request other than execute was not answered in time: the host stops it (see call). */
  unresponsive: (op: string, timeoutMs: number) => void
}

/** Starts a worker thread and resolves once it has loaded its sealed state (or rejects with why it could not). */
async function startThread (init: WorkerInit, store: SealedBlobStore, resourceLimits: ResourceLimits | undefined, hooks: ThreadHooks): Promise<EnclaveThread> {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { workerData: init, resourceLimits })
  const pending = new Map<number, Pending>()
  let nextId = 1
  let ended = false
  /** Set by terminate(): the exit that follows is ours, not a crash. */
  let stopping = false
  let ready: WorkerReady | undefined
  /** A crash is reported once ('error' is followed by 'exit'). */
  let lostReported = false
  const lost = (err: Error): void => {
    if (stopping || ready === undefined || lostReported) return
    lostReported = true
    hooks.lost(err)
  }

  const failAll = (err: Error): void => {
    for (const p of pending.values()) { clearTimeout(p.timer); p.reject(err) }
    pending.clear()
  }

  const readyPromise = new Promise<void>((resolve, reject) => {
    worker.on('message', (msg: WorkerMessage) => {
      switch (msg.kind) {
        case 'ready':
          ready = { measurement: msg.measurement, attestationRoot: msg.attestationRoot, tasks: msg.tasks }
          resolve()
          return
        case 'startFailed':
          reject(deserializeError(msg.error))
          return
        case 'response': {
          const p = pending.get(msg.id)
          if (p === undefined) return
          pending.delete(msg.id)
          clearTimeout(p.timer)
          if (msg.ok) p.resolve(msg.value)
          else p.reject(deserializeError(msg.error))
          return
        }
        case 'ocall':
          void serveOcall(msg)
      }
    })
    worker.on('error', (err) => {
      const closedErr = new EnclaveClosedError(`enclave worker failed: ${err.message}`)
      failAll(closedErr)
      reject(err)
      lost(err)
    })
    worker.on('exit', (code) => {
      ended = true
      failAll(new EnclaveClosedError(stopping ? 'enclave closed' : `enclave worker exited (${code})`))
      reject(new EnclaveClosedError(`enclave worker exited (${code}) before it was ready`))
      lost(new EnclaveClosedError(`enclave worker exited (${code})`))
    })
  })

  async function serveOcall (msg: Extract<WorkerMessage, { kind: 'ocall' }>): Promise<void> {
    let reply: HostMessage
    try {
      if (msg.op === 'get') reply = { kind: 'ocallResult', id: msg.id, blob: await store.get(msg.key) }
      else if (msg.op === 'put') { await store.put(msg.key, msg.blob!); reply = { kind: 'ocallResult', id: msg.id } }
      else { await store.delete(msg.key); reply = { kind: 'ocallResult', id: msg.id } }
    } catch (err) {
      reply = { kind: 'ocallResult', id: msg.id, error: (err as Error).message }
    }
    if (!ended && !stopping) worker.postMessage(reply)
  }

  const thread: EnclaveThread = {
    ready: undefined as unknown as WorkerReady,
    call: (op, params, timeoutMs, transfer = []) => {
      if (ended || stopping) return Promise.reject(new EnclaveClosedError('enclave is closed'))
      const id = nextId++
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new EnclaveTimeoutError(`enclave did not answer ${op} within ${timeoutMs} ms`))
          // A run happens in its own thread and holds up nothing: its late answer is dropped.
          if (op !== 'execute') hooks.unresponsive(op, timeoutMs)
        }, timeoutMs)
        pending.set(id, { resolve, reject, timer })
        const msg: HostMessage = { kind: 'request', id, request: { op, params } as Request }
        worker.postMessage(msg, transfer)
      })
    },
    terminate: async (why) => {
      stopping = true
      failAll(new EnclaveClosedError(why))
      await worker.terminate()
    }
  }

  try {
    await readyPromise
  } catch (err) {
    stopping = true
    await worker.terminate()
    throw err
  }
  thread.ready = ready!
  return thread
}

/**
 * Starts a simulated enclave (a worker thread) and resolves once it has loaded its sealed state. With
 * `idleStopMs`, the thread stops while the enclave is idle and holds no task, and starts again on the next request.
 */
export async function createEnclave (options: EnclaveOptions, components: EnclaveComponents = {}): Promise<EnclaveHost> {
  if (typeof options.attestationKey !== 'string') throw new InvalidRequestError('attestationKey (hex private key) is required')
  if (typeof options.operator !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(options.operator)) throw new InvalidRequestError('operator (the node\'s account address) is required')
  const platformSecret = toBytes(options.platformSecret, 'platformSecret')
  if (!(platformSecret instanceof Uint8Array) || platformSecret.length !== 32) throw new InvalidRequestError('platformSecret must be 32 bytes')
  try {
    networkDomainKey(options.domain)
  } catch (err) {
    throw new InvalidRequestError(`domain must be { chainId: positive bigint, verifyingContract: address }: ${(err as Error).message}`)
  }
  const idleStopMs = options.idleStopMs
  if (idleStopMs !== undefined && !(Number.isSafeInteger(idleStopMs) && idleStopMs > 0)) throw new InvalidRequestError('idleStopMs must be a positive integer of milliseconds')
  const store = options.store ?? new MemoryBlobStore()
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
  const executeTimeoutMs = options.executeTimeoutMs ?? DEFAULT_EXECUTE_TIMEOUT_MS
  const log = (components.logger ?? silentLogger).forComponent('sdte:enclave')

  const runBudget = runBudgetPolicy(options.runBudget)
  const variant = options.variant ?? ''
  /** The start parameters of a thread; a variant function is asked at each start (a test's build changed on disk). */
  const initNow = (): WorkerInit => ({
    attestationKey: options.attestationKey,
    platformSecret: Uint8Array.from(platformSecret),
    domain: { chainId: options.domain.chainId, verifyingContract: options.domain.verifyingContract },
    operator: options.operator.toLowerCase(),
    variant: typeof variant === 'function' ? variant() : variant,
    faultWrongResult: options.faultWrongResult === true,
    runBudget
  })

  let closed = false
  /** Set once a restarted thread reported another build: every later request fails with it. */
  let buildChanged: EnclaveBuildChangedError | undefined
  /** The running (or starting) thread; undefined once it stopped while idle. */
  let thread: Promise<EnclaveThread> | undefined
  /** Requests in progress, and those of them that count as activity (every one but `tasks`: the node's tick asks it). */
  let inProgress = 0
  let busy = 0
  /** Counts requests other than `tasks` ever started: an idle stop that saw one start meanwhile does not stop. */
  let requests = 0
  let idleTimer: NodeJS.Timeout | undefined

  const hooks: ThreadHooks = {
    lost: (err) => {
      log.error('enclave worker failed', { error: err })
      void host.close()
    },
    unresponsive: (op, timeoutMs) => {
      // The worker serves the other requests one at a time: one that does not answer holds up
      // all others. Stop it; its state is sealed, and a new createEnclave() resumes from there.
      log.warn('enclave worker unresponsive, stopping it', { op, timeoutMs })
      void host.close()
    }
  }

  const first = await startThread(initNow(), store, options.resourceLimits, hooks)
  const started = first.ready
  thread = Promise.resolve(first)
  log.info('enclave started', { mode: 'sim', measurement: started.measurement, tasks: started.tasks.length })

  /**
   * A thread started again must be the same build: the node registered and announced this measurement. A consistency
   * check, not a guard of the secrets: the changed build has already received the WorkerInit (keys, platform secret)
   * and opened the store by the time its measurement is compared. Once changed, the host stays closed with
   * EnclaveBuildChangedError (not EnclaveClosedError: a node must not open a new enclave on the changed build).
   */
  async function restart (): Promise<EnclaveThread> {
    const t = await startThread(initNow(), store, options.resourceLimits, hooks)
    if (t.ready.measurement !== started.measurement) {
      await t.terminate('enclave closed')
      buildChanged = new EnclaveBuildChangedError(`the enclave build on disk changed since the enclave started (measurement ${started.measurement}, now ${t.ready.measurement}): restart the daemon`)
      void host.close()
      throw buildChanged
    }
    log.debug('enclave thread started again', { tasks: t.ready.tasks.length })
    return t
  }

  function threadNow (): Promise<EnclaveThread> {
    if (thread === undefined) {
      const starting = restart()
      thread = starting
      // A start that failed is tried again by the next request.
      starting.catch(() => { if (thread === starting) thread = undefined })
    }
    return thread
  }

  function armIdleStop (): void {
    if (idleStopMs === undefined || closed || busy > 0) return
    clearTimeout(idleTimer)
    idleTimer = setTimeout(() => { void stopIfIdle() }, idleStopMs)
    idleTimer.unref()
  }

  async function stopIfIdle (): Promise<void> {
    idleTimer = undefined
    const current = thread
    if (closed || current === undefined || busy > 0) return
    const seen = requests
    let held: number
    try {
      held = (await (await current).call('tasks', {}, requestTimeoutMs)).length
    } catch {
      return
    }
    // A task's sealed state is all a restart needs, but not all the worker holds (an open delivery, a run): only a
    // thread with no task stops. The next request for a task arms the timer again when it ends.
    if (held > 0 || closed || thread !== current || busy > 0 || requests !== seen) return
    if (inProgress > 0) { armIdleStop(); return }
    thread = undefined
    await (await current).terminate('enclave thread stopped while idle')
    log.debug('enclave thread stopped while idle', { idleStopMs })
    if (!closed) options.onIdleStop?.()
  }

  /** Runs one request on the thread, starting it first if it stopped while idle. */
  async function use<T> (op: Request['op'], fn: (t: EnclaveThread) => Promise<T>): Promise<T> {
    if (buildChanged !== undefined) throw buildChanged
    if (closed) throw new EnclaveClosedError('enclave is closed')
    const active = op !== 'tasks'
    inProgress++
    if (active) { busy++; requests++; clearTimeout(idleTimer); idleTimer = undefined }
    try {
      return await fn(await threadNow())
    } finally {
      inProgress--
      if (active) { busy--; armIdleStop() }
    }
  }

  /** The thread holds no task while stopped (it stops only then, and only a request to it makes one): nothing to ask. */
  async function tasksNow (): Promise<TaskSummary[]> {
    if (!closed && thread === undefined) return []
    return await use('tasks', async t => await t.call('tasks', {}, requestTimeoutMs))
  }

  const host: EnclaveHost = {
    mode: 'sim',
    measurement: started.measurement,
    attestationRoot: started.attestationRoot,
    attest: async (req) => {
      const r = await use('attest', async t => await t.call('attest', { tradeId: req.tradeId, codeHash: req.codeHash, nonce: req.nonce }, requestTimeoutMs))
      log.debug('attested', { tradeId: req.tradeId, taskId: r.taskId, enclaveAddress: r.quote.enclaveAddress })
      return r
    },
    deliverCode: async (taskId, envelope, authorization) => {
      await use('deliverCode', async t => await t.call('deliverCode', { taskId, envelope: toBytes(envelope, 'envelope'), salt: authorization.salt, signature: authorization.signature }, requestTimeoutMs))
    },
    deliverData: async (taskId, d) => await use('openData', async (t) => {
      const wrappedKey = toBytes(d.wrappedKey, 'wrappedKey')
      const opened = await t.call('openData', { taskId, sellerIndex: d.sellerIndex, commitment: d.commitment, wrappedKey, sellerSignature: d.sellerSignature }, requestTimeoutMs)
      // Pipelined: up to DATA_CHUNKS_IN_FLIGHT chunks go to the worker before their answers come back, so the
      // stream keeps arriving while the worker checks and stores. The worker takes them in order, one at a time,
      // as before. Chunks posted after one that failed change nothing there (a chunk past a gap is a ChunkOrderError,
      // one after a refusal a TaskStateError): the first failure is the answer, as when each chunk waited for the last.
      let complete = opened.complete
      let failure: { err: unknown } | undefined
      const inFlight: Array<Promise<void>> = []
      const post = (chunk: Uint8Array): Promise<void> => {
        // A copy of just the chunk, moved to the worker: structured cloning the view would copy its whole underlying
        // buffer (a stream's chunk may be a view into a larger one), and the caller's buffer must stay usable.
        // Not chunk.slice(): on a Buffer that is a view, and moving it would detach Node's shared pool.
        const own = new Uint8Array(chunk)
        return t.call('dataChunk', { taskId, sellerIndex: d.sellerIndex, chunk: own }, requestTimeoutMs, [own.buffer]).then(
          (st) => { if (st.complete) complete = true },
          (err: unknown) => { failure ??= { err } }
        )
      }
      for await (const chunk of d.chunks) {
        if (complete || failure !== undefined) break
        inFlight.push(post(chunk))
        if (inFlight.length >= DATA_CHUNKS_IN_FLIGHT) await inFlight.shift()
      }
      await Promise.all(inFlight)
      if (failure !== undefined) throw failure.err
      return await t.call('closeData', { taskId, sellerIndex: d.sellerIndex }, requestTimeoutMs)
    }),
    ackReceipt: async (taskId, sellerIndex, signature) => await use('ackReceipt', async t => await t.call('ackReceipt', { taskId, sellerIndex, signature }, requestTimeoutMs)),
    execute: async (taskId, opts = {}) => {
      let r: ExecuteResponse
      try {
        r = await use('execute', async t => await t.call('execute', { taskId, ...opts }, executeTimeoutMs))
      } catch (err) {
        if (err instanceof RunOverBudgetError) log.warn('run killed over its budget, nothing signed', { taskId, reason: err.message })
        throw err
      }
      log.debug('executed', { taskId, status: r.resultInfo.status, reason: r.reason, resultSize: r.resultInfo.resultSize })
      return r
    },
    tasks: tasksNow,
    resume: tasksNow,
    dropTask: async (taskId) => { await use('dropTask', async t => await t.call('dropTask', { taskId }, requestTimeoutMs)) },
    warm: () => {
      if (closed) return
      // A request is expected soon: that pushes back a pending idle stop as a request would (an idle check under
      // way sees `requests` moved and does not stop), and starts a stopped thread.
      requests++
      if (thread !== undefined) { armIdleStop(); return }
      threadNow().then(() => { armIdleStop() }, () => {})
    },
    close: async () => {
      if (closed) return
      closed = true
      clearTimeout(idleTimer)
      const current = thread
      thread = undefined
      const t = await current?.catch(() => undefined)
      await t?.terminate('enclave closed')
    }
  }
  armIdleStop()
  return host
}
