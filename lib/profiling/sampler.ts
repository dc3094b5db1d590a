import { Session } from 'node:inspector'
import { pathToFileURL } from 'node:url'

/** One frame of a sampled stack. */
export interface Frame {
  functionName: string
  url: string
  /** 1-based, as editors show it. */
  line: number
}

/**
 * How a request's samples were told from the rest of the process's: `code` when only samples whose
 * stack passes through the request's own route code (its handler and route hooks, and their async
 * continuations, which V8 shows as the same function) were kept; `none` when that code could not be
 * located, and then nothing is attributed (the hot list stays empty rather than naming others' work).
 */
export type Attribution = 'code' | 'none'

/** Where the main thread was for one request: the hottest frames of its own code, and how sure that is. */
export interface StackEvidence {
  /** Samples attributed to the request. */
  samples: number
  intervalUs: number
  /** Share of the request's time the main thread spent in the request's own code, %. */
  busyPercent: number
  /**
   * Share of the request's time the main thread was busy with anything else: other requests, timers,
   * callbacks this request may have caused (a database driver parsing its reply), GC, %. Not attributed.
   */
  otherBusyPercent: number
  attribution: Attribution
  /**
   * Other requests of the same endpoint that ran at the same time: they run the same handler, so
   * their samples cannot be told from this one's. 0 means the attributed samples are this request's own.
   */
  concurrent: number
  /** Busiest first: the innermost app frame being executed, with the stack that led to it (outermost first). */
  hot: Array<{ frame: Frame, samples: number, stack: Frame[] }>
}

/**
 * A function's place in the code as V8 reports it (`scriptId:line:column`, 0-based): the same key for
 * a function object (its `[[FunctionLocation]]`) and for every profile node running it.
 */
export type CodeKey = string

interface CallFrame { functionName: string, scriptId: string, url: string, lineNumber: number, columnNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, parent?: number, children?: number[] }
interface Profile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

/** A window the caller wants the samples of, answered at the next rotation. */
interface Pending {
  startUs: number
  endUs: number
  resolve: (profile: IndexedProfile | undefined) => void
}

/** A rotated profile, indexed once for all the windows it answers (hundreds a second at level 3). */
interface IndexedProfile {
  profile: Profile
  byId: Map<number, ProfileNode>
  parents: Map<number, number>
  /** Each node's code key, for attribution. */
  keys: Map<number, CodeKey>
  root: ProfileNode | undefined
  /** Each sample's time, µs. */
  times: Float64Array
  /** False when V8 logged a sample out of order (a negative delta): windows then scan every sample. */
  ascending: boolean
}

function indexProfile (profile: Profile): IndexedProfile {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parents = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id)
  const times = new Float64Array(profile.samples.length)
  let time = profile.startTime
  let ascending = true
  for (let i = 0; i < times.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0
    if (delta < 0) ascending = false
    time += delta
    times[i] = time
  }
  const keys = new Map(profile.nodes.map((node) => [node.id, codeKey(node.callFrame)]))
  return { profile, byId, parents, keys, root: profile.nodes.find((node) => !parents.has(node.id)), times, ascending }
}

function codeKey (location: { scriptId: string, lineNumber: number, columnNumber: number }): CodeKey {
  return `${location.scriptId}:${location.lineNumber}:${location.columnNumber}`
}

/** The plugin's own source (lib/ or dist/): its frames are never shown, they say nothing about the app. */
const PLUGIN_DIR = new URL('..', import.meta.url).href

/** True for a frame of the plugin's own code. */
export function isPluginFrame (url: string): boolean {
  return url.startsWith(PLUGIN_DIR)
}

/**
 * What a request's samples are told apart by: the code keys of its route's handler and hooks, and the
 * other requests of its endpoint that overlapped it.
 */
export interface RequestCode {
  keys: ReadonlySet<CodeKey>
  concurrent: number
  /**
   * When the handler's synchronous call ran (µs, {@link nowUs}), and the handler's code key and name. The
   * thread ran nothing else then, so every sample in it is the request's, whatever frame it names: code V8
   * optimised before this sampler started lists no frame of what it inlined, and a handler inlined into the
   * plugin's wrapper shows as the wrapper (then as the handler, `(inlined)`, in the hot list).
   */
  handlerCall?: { startUs: number, endUs: number, key: CodeKey | undefined, name: string }
}

/**
 * A request's call tree, compact: a dictionary of frames and one entry per tree node
 * `[frame index, parent node index or -1, self µs, total µs]`, parents before children. Each sample
 * weighs the time until the next one (as DevTools counts), so missed ticks do not shrink the times.
 */
export interface CallTree {
  intervalUs: number
  /** Samples attributed to the request (those whose stack passes through its route's code). */
  samples: number
  /**
   * Other requests of the same endpoint that ran at the same time: their samples in the same code
   * cannot be told from this one's. Absent in trees stored before it was recorded.
   */
  concurrent?: number
  frames: Frame[]
  nodes: Array<[frame: number, parent: number, selfUs: number, totalUs: number]>
}

const MAX_PENDING = 1_000
/** Scripts whose URL is remembered (a process loads hundreds; code built by `eval` may make more). */
const MAX_SCRIPTS = 10_000
let profileSequence = 0
const HOT_FRAMES = 10
const STACK_DEPTH = 30

/** Monotonic µs on the clock V8's profiler uses for sample timestamps (CLOCK_MONOTONIC). */
export function nowUs (): number {
  return Number(process.hrtime.bigint() / 1000n)
}

/**
 * `performance.now()` on the profiler's clock is a constant away (both count CLOCK_MONOTONIC, from
 * different origins). Read once, from the pair of readings taken closest together: a thread preempted
 * between two readings would otherwise shift every window it places.
 */
const PERFORMANCE_TO_US = ((): number => {
  let best = { spanMs: Infinity, offsetUs: 0 }
  for (let i = 0; i < 5; i++) {
    const before = performance.now()
    const us = nowUs()
    const after = performance.now()
    if (after - before < best.spanMs) best = { spanMs: after - before, offsetUs: us - (before + after) * 500 }
  }
  return best.offsetUs
})()

/**
 * A `performance.now()` reading in µs on the profiler's clock: a request's window is placed from the
 * times its hooks read, not from a later `nowUs()` (on a loaded machine the thread can be descheduled for
 * milliseconds in between, and the window would then cover the next request's work).
 */
export function performanceToUs (ms: number): number {
  return ms * 1000 + PERFORMANCE_TO_US
}

/**
 * V8's sampling CPU profiler on the main thread, through the inspector. Samples are taken by V8's
 * own sampler thread, so a handler that blocks the event loop is still caught. Every `rotateMs` the
 * profile ends, the windows asked for are answered from its samples, and the next one has already
 * begun. It only runs while some endpoint is at level 2 or more: off, it costs nothing.
 *
 * The profiles are console profiles (`console.profile(title)`, reported to this session) so that two
 * can overlap: V8 disposes of its profiler when the last profile stops, and a new one first logs every
 * compiled function of the heap — 30–40 ms of blocked main thread in a real app, once a second with
 * `Profiler.stop`/`Profiler.start`. Overlapping, a rotation takes about a millisecond.
 *
 * ### Examples
 * ```ts
 * const sampler = new StackSampler(1000, 1000)
 * sampler.start()
 * const evidence = await sampler.samplesOf(startUs, nowUs())
 * ```
 */
export class StackSampler {
  readonly #intervalUs: number
  readonly #rotateMs: number
  readonly #rootUrl: string
  #session: Session | undefined
  /** Code keys of functions already located (one inspector round trip each, ~0.5 ms, once per function). */
  readonly #located = new WeakMap<Function, CodeKey | null>()
  #timer: NodeJS.Timeout | undefined
  /** Windows waiting for the current profile to end. */
  #pending: Pending[] = []
  /** The title of the profile being recorded. */
  #current = ''
  /** Windows waiting for an ended profile, by its title, until the session reports it (synchronously). */
  readonly #ending = new Map<string, Pending[]>()
  /**
   * The URL of every script seen in a profile since the sampler started, by script id: a handler inlined
   * into the plugin's wrapper has no node of its own, and the profile its samples are in may have none of
   * its script either (V8 gives a function's script id, not its URL, without the debugger).
   */
  readonly #scriptUrls = new Map<string, string>()

  /** `appRoot`: stack paths under it are shown relative to it (default `process.cwd()`). */
  constructor (intervalUs: number, rotateMs: number, appRoot = process.cwd()) {
    this.#intervalUs = intervalUs
    this.#rotateMs = rotateMs
    this.#rootUrl = `${pathToFileURL(appRoot).href.replace(/\/$/, '')}/`
  }

  /**
   * The code key of a function, from its `[[FunctionLocation]]` through the inspector (answered
   * synchronously on this thread); undefined while the sampler is off or for a native function.
   */
  locate (fn: Function): CodeKey | undefined {
    const cached = this.#located.get(fn)
    if (cached !== undefined) return cached ?? undefined
    const session = this.#session
    if (session === undefined) return undefined
    let key: CodeKey | null = null
    const slot = `__fastifyMonitoringDashboardLocate${++profileSequence}`
    const global = globalThis as Record<string, unknown>
    try {
      global[slot] = fn
      let objectId: string | undefined
      session.post('Runtime.evaluate', { expression: `globalThis.${slot}` }, (err, result) => { if (err === null) objectId = result.result.objectId })
      // a bound function (Fastify binds every route handler) has no location of its own: its target has
      for (let hops = 0; objectId !== undefined && hops < 4; hops++) {
        const current: string = objectId
        objectId = undefined
        session.post('Runtime.getProperties', { objectId: current, ownProperties: true }, (err, result) => {
          if (err !== null) return
          const internal = result.internalProperties ?? []
          const location = internal.find((p) => p.name === '[[FunctionLocation]]')?.value?.value as { scriptId: string, lineNumber: number, columnNumber: number } | undefined
          if (location !== undefined) key = codeKey(location)
          else objectId = internal.find((p) => p.name === '[[TargetFunction]]')?.value?.objectId
        })
        session.post('Runtime.releaseObject', { objectId: current })
      }
    } finally {
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete
      delete global[slot]
    }
    this.#located.set(fn, key)
    return key ?? undefined
  }

  /** A frame as shown: paths under the app's root relative to it. */
  #frame (node: ProfileNode): Frame {
    const { functionName, url, lineNumber } = node.callFrame
    return {
      functionName: functionName === '' ? '(anonymous)' : functionName,
      url: url.startsWith(this.#rootUrl) ? url.slice(this.#rootUrl.length) : url,
      line: lineNumber + 1
    }
  }

  #learnScripts (profile: Profile): void {
    for (const { callFrame: { scriptId, url } } of profile.nodes) {
      if (url === '' || this.#scriptUrls.has(scriptId)) continue
      if (this.#scriptUrls.size >= MAX_SCRIPTS) return
      this.#scriptUrls.set(scriptId, url)
    }
  }

  /** How a sampled frame and an inlined handler are shown, for the functions below. */
  readonly #frames: Frames = {
    of: (node) => this.#frame(node),
    inScript: (scriptId, functionName, line) => {
      const url = this.#scriptUrls.get(scriptId)
      return url === undefined
        ? { functionName, url: '', line: 0 }
        : this.#frame({ id: 0, callFrame: { functionName, scriptId, url, lineNumber: line, columnNumber: 0 } })
    }
  }

  get running (): boolean { return this.#session !== undefined }

  start (): void {
    if (this.#session !== undefined) return
    const session = new Session()
    session.connect()
    this.#session = session
    session.post('Profiler.enable')
    session.post('Profiler.setSamplingInterval', { interval: this.#intervalUs })
    session.on('Profiler.consoleProfileFinished', ({ params }: { params: { title?: string, profile: Profile } }) => {
      const waiting = params.title === undefined ? undefined : this.#ending.get(params.title)
      if (waiting === undefined) return
      this.#learnScripts(params.profile)
      this.#ending.delete(params.title!)
      const profile = waiting.length > 0 ? indexProfile(params.profile) : undefined
      for (const p of waiting) p.resolve(profile)
    })
    this.#current = this.#begin()
    this.#timer = setInterval(() => { this.#rotate() }, this.#rotateMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    const session = this.#session
    this.#session = undefined
    if (session === undefined) return
    this.#end(this.#current)
    // anything the session did not answer (it should have, synchronously) gets no profile
    for (const waiting of this.#ending.values()) for (const p of waiting) p.resolve(undefined)
    this.#ending.clear()
    session.disconnect()
  }

  /**
   * A request's samples in [startUs, endUs] (from {@link nowUs}), once the current profile is rotated:
   * only those whose stack passes through `code` are attributed to it.
   */
  async samplesOf (startUs: number, endUs: number, code: RequestCode): Promise<StackEvidence> {
    const profile = await this.#profileOf(startUs, endUs)
    return profile === undefined
      ? { ...emptyEvidence(this.#intervalUs, code), attribution: 'none' }
      : evidenceOf(profile, startUs, endUs, this.#intervalUs, code, this.#frames)
  }

  /**
   * A request's call tree: the samples of [startUs, endUs] whose stack passes through `code`; undefined
   * when the sampler is off, too many wait, or the code is unknown.
   */
  async treeOf (startUs: number, endUs: number, code: RequestCode): Promise<CallTree | undefined> {
    if (code.keys.size === 0) return undefined
    const profile = await this.#profileOf(startUs, endUs)
    return profile === undefined ? undefined : treeOf(profile, startUs, endUs, this.#intervalUs, code, this.#frames.of)
  }

  async #profileOf (startUs: number, endUs: number): Promise<IndexedProfile | undefined> {
    if (this.#session === undefined || this.#pending.length >= MAX_PENDING) return undefined
    return await new Promise((resolve) => { this.#pending.push({ startUs, endUs, resolve }) })
  }

  /** Ends the current profile every `rotateMs`, windows or not, so that none grows for long. */
  #rotate (): void {
    if (this.#session === undefined) return
    const ended = this.#current
    // the next begins before this one ends: the profiler stays up
    this.#current = this.#begin()
    this.#end(ended)
  }

  #begin (): string {
    // unique in the process: console profiles are shared by every inspector session (every sampler)
    const title = `fastify-monitoring-dashboard ${++profileSequence}`
    console.profile(title)
    return title
  }

  /** Ends a profile; the session reports it at once, to the windows that were waiting for it. */
  #end (title: string): void {
    this.#ending.set(title, this.#pending)
    this.#pending = []
    console.profileEnd(title)
  }
}


/**
 * Which samples of a profile are the request's, called in sample order: a sample is when it was taken
 * while the handler's synchronous call ran, or when its stack passes through one of the request's code
 * keys (memoised per node for one window). V8 records a garbage collection without a stack: it goes with
 * the sample before it, whose allocations caused it.
 */
function attributor ({ keys, parents, byId }: IndexedProfile, { keys: code, handlerCall }: RequestCode): (id: number, time: number) => boolean {
  const memo = new Map<number, boolean>()
  const through = (id: number): boolean => {
    let known = memo.get(id)
    if (known !== undefined) return known
    const parent = parents.get(id)
    known = code.has(keys.get(id) ?? '') || (parent !== undefined && through(parent))
    memo.set(id, known)
    return known
  }
  let previous = false
  return (id, time) => {
    if (handlerCall !== undefined && time >= handlerCall.startUs && time <= handlerCall.endUs) return (previous = true)
    if (byId.get(id)?.callFrame.functionName === GC) return previous
    previous = through(id)
    return previous
  }
}

const GC = '(garbage collector)'

/** The owner of samples that ran a handler inlined into the plugin's wrapper (no profile node id is negative). */
const INLINED_HANDLER = -1

/** The handler's frame for samples that ran it inlined: its name, and its place from its code key when known. */
function inlinedHandlerFrame (call: NonNullable<RequestCode['handlerCall']>, frames: Frames): Frame {
  const [scriptId = '', line = '0'] = call.key?.split(':') ?? []
  return frames.inScript(scriptId, `${call.name === '' ? '(anonymous)' : call.name} (inlined)`, Number(line))
}

type FrameOf = (node: ProfileNode) => Frame
interface Frames {
  of: FrameOf
  /** A frame in a script by its id, for code with no node of its own. */
  inScript: (scriptId: string, functionName: string, line: number) => Frame
}

/** Nodes left out of trees and stacks: V8's bookkeeping (garbage collection stays) and the plugin's own frames. */
function hidden (node: ProfileNode): boolean {
  return IDLE.has(node.callFrame.functionName) || isPluginFrame(node.callFrame.url)
}

/** The call tree of a request's samples in a window: only the nodes on one of its sampled stacks. */
function treeOf (indexed: IndexedProfile, startUs: number, endUs: number, intervalUs: number, code: RequestCode, frameOf: FrameOf): CallTree {
  const { profile, byId, parents } = indexed
  const own = attributor(indexed, code)
  const self = new Map<number, number>()
  const samples = forEachSample(indexed, startUs, endUs, (id, i, time) => {
    if (!own(id, time)) return false
    self.set(id, (self.get(id) ?? 0) + sampleWeight(profile, i, time, endUs, intervalUs))
    return true
  })
  // totals: each sample counts for its node and every ancestor
  const total = new Map<number, number>()
  for (const [id, n] of self) {
    for (let at: number | undefined = id; at !== undefined && byId.get(at)?.callFrame.functionName !== '(root)'; at = parents.get(at)) {
      total.set(at, (total.get(at) ?? 0) + n)
    }
  }
  const frames: Frame[] = []
  const frameIndex = new Map<string, number>()
  const nodes: CallTree['nodes'] = []
  // parents first: visit from the root down; a hidden node's time stays with its nearest shown caller
  const visit = (id: number, parent: number): void => {
    const node = byId.get(id)!
    let index = parent
    if (!hidden(node)) {
      const frame = frameOf(node)
      const key = `${frame.functionName}\u0000${frame.url}\u0000${frame.line}`
      let f = frameIndex.get(key)
      if (f === undefined) { f = frames.length; frames.push(frame); frameIndex.set(key, f) }
      index = nodes.length
      nodes.push([f, parent, self.get(id) ?? 0, total.get(id)!])
    } else if (parent >= 0) {
      nodes[parent]![2] += self.get(id) ?? 0
    }
    for (const child of node.children ?? []) if (total.has(child)) visit(child, index)
  }
  const root = indexed.root
  if (root !== undefined) for (const child of root.children ?? []) if (total.has(child)) visit(child, -1)
  return { intervalUs, samples, concurrent: code.concurrent, frames, nodes }
}

/** Not the main thread's work at all: the thread was waiting, or V8's own bookkeeping and the root. */
const IDLE = new Set(['(idle)', '(program)', '(root)'])

/**
 * The µs a sample stands for: the time until the next sample (V8's ticks slip when the machine is
 * busy, and DevTools counts time the same way), cut at the window's end and at 10 intervals.
 */
function sampleWeight (profile: Profile, index: number, time: number, endUs: number, intervalUs: number): number {
  return Math.max(0, Math.min(profile.timeDeltas[index + 1] ?? intervalUs, endUs - time, 10 * intervalUs))
}

/**
 * Calls `fn` with the leaf node id and index of every busy sample in [startUs, endUs] (not idle);
 * returns how many `fn` accepted.
 */
function forEachSample ({ profile, byId, times, ascending }: IndexedProfile, startUs: number, endUs: number, fn: (id: number, index: number, time: number) => boolean): number {
  let samples = 0
  // the window's first sample by bisection: only its own samples are read
  let i = 0
  if (ascending) {
    for (let high = times.length; i < high;) {
      const mid = (i + high) >>> 1
      if (times[mid]! < startUs) i = mid + 1; else high = mid
    }
  }
  for (; i < times.length; i++) {
    const time = times[i]!
    if (time > endUs && ascending) break
    if (time < startUs || time > endUs) continue
    const id = profile.samples[i]!
    if (IDLE.has(byId.get(id)?.callFrame.functionName ?? '')) continue
    if (fn(id, i, time)) samples++
  }
  return samples
}

function emptyEvidence (intervalUs: number, code: RequestCode): StackEvidence {
  return { samples: 0, intervalUs, busyPercent: 0, otherBusyPercent: 0, attribution: code.keys.size > 0 ? 'code' : 'none', concurrent: code.concurrent, hot: [] }
}

/** Counts a request's samples per frame of app code and describes the hottest with their stacks. */
function evidenceOf (indexed: IndexedProfile, startUs: number, endUs: number, intervalUs: number, code: RequestCode, frames: Frames): StackEvidence {
  const { profile, byId, parents } = indexed
  const frameOf = frames.of
  const own = attributor(indexed, code)
  // a sample is charged to the innermost frame of JavaScript with a source (a native such as
  // performance.now() or a node: internal says less than the app code that called it), never the plugin's:
  // one whose innermost such frame is the plugin's wrapper ran the handler inlined into it (INLINED_HANDLER)
  const ownerCache = new Map<number, number>()
  const ownerOf = (leaf: number): number => {
    let owner = ownerCache.get(leaf)
    if (owner !== undefined) return owner
    owner = leaf
    for (let at: number | undefined = leaf; at !== undefined; at = parents.get(at)) {
      const url = byId.get(at)?.callFrame.url ?? ''
      if (url === '' || url.startsWith('node:')) continue
      if (!isPluginFrame(url)) { owner = at; break }
      if (code.handlerCall !== undefined) { owner = INLINED_HANDLER; break }
    }
    ownerCache.set(leaf, owner)
    return owner
  }
  /** A sample that ran the handler inlined: its stack stands for theirs. */
  let inlinedLeaf: number | undefined
  const counts = new Map<number, number>()
  let busyUs = 0
  let otherUs = 0
  const samples = forEachSample(indexed, startUs, endUs, (id, i, time) => {
    const weight = sampleWeight(profile, i, time, endUs, intervalUs)
    if (!own(id, time)) {
      otherUs += weight
      return false
    }
    const owner = ownerOf(id)
    counts.set(owner, (counts.get(owner) ?? 0) + 1)
    if (owner === INLINED_HANDLER) inlinedLeaf ??= id
    busyUs += weight
    return true
  })
  const stackOf = (id: number): Frame[] => {
    const stack: Frame[] = []
    for (let at: number | undefined = id; at !== undefined && stack.length < STACK_DEPTH; at = parents.get(at)) {
      const node = byId.get(at)
      if (node === undefined || node.callFrame.functionName === '(root)') break
      if (!isPluginFrame(node.callFrame.url)) stack.unshift(frameOf(node))
    }
    return stack
  }
  const hot = [...counts].sort((a, b) => b[1] - a[1]).slice(0, HOT_FRAMES).map(([id, n]) => {
    if (id !== INLINED_HANDLER) return { frame: frameOf(byId.get(id)!), samples: n, stack: stackOf(id) }
    const frame = inlinedHandlerFrame(code.handlerCall!, frames)
    return { frame, samples: n, stack: [...stackOf(inlinedLeaf!), frame] }
  })
  const windowUs = Math.max(intervalUs, endUs - startUs)
  return {
    samples,
    intervalUs,
    busyPercent: Math.min(100, Math.round(busyUs / windowUs * 100)),
    otherBusyPercent: Math.min(100, Math.round(otherUs / windowUs * 100)),
    attribution: code.keys.size > 0 ? 'code' : 'none',
    concurrent: code.concurrent,
    hot
  }
}
