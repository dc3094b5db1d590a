import { Session } from 'node:inspector'

/** One frame of a sampled stack. */
export interface Frame {
  functionName: string
  url: string
  /** 1-based, as editors show it. */
  line: number
}

/** Where the main thread was during a time window: the hottest leaf frames and their share of the samples. */
export interface StackEvidence {
  samples: number
  intervalUs: number
  /** Share of the window the main thread was running JavaScript or native code (not idle), %. */
  busyPercent: number
  /** Busiest first: the innermost app frame being executed, with the stack that led to it (outermost first). */
  hot: Array<{ frame: Frame, samples: number, stack: Frame[] }>
}

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, parent?: number, children?: number[] }
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
  return { profile, byId, parents, root: profile.nodes.find((node) => !parents.has(node.id)), times, ascending }
}

/**
 * A request's call tree, compact: a dictionary of frames and one entry per tree node
 * `[frame index, parent node index or -1, self µs, total µs]`, parents before children. Each sample
 * weighs the time until the next one (as DevTools counts), so missed ticks do not shrink the times.
 */
export interface CallTree {
  intervalUs: number
  samples: number
  frames: Frame[]
  nodes: Array<[frame: number, parent: number, selfUs: number, totalUs: number]>
}

const MAX_PENDING = 1_000
let profileSequence = 0
const HOT_FRAMES = 10
const STACK_DEPTH = 30

/** Monotonic µs on the clock V8's profiler uses for sample timestamps (CLOCK_MONOTONIC). */
export function nowUs (): number {
  return Number(process.hrtime.bigint() / 1000n)
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
  #session: Session | undefined
  #timer: NodeJS.Timeout | undefined
  /** Windows waiting for the current profile to end. */
  #pending: Pending[] = []
  /** The title of the profile being recorded. */
  #current = ''
  /** Windows waiting for an ended profile, by its title, until the session reports it (synchronously). */
  readonly #ending = new Map<string, Pending[]>()

  constructor (intervalUs: number, rotateMs: number) {
    this.#intervalUs = intervalUs
    this.#rotateMs = rotateMs
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

  /** The samples of [startUs, endUs] (from {@link nowUs}), once the current profile is rotated. */
  async samplesOf (startUs: number, endUs: number): Promise<StackEvidence> {
    const profile = await this.#profileOf(startUs, endUs)
    return profile === undefined ? emptyEvidence(this.#intervalUs) : evidenceOf(profile, startUs, endUs, this.#intervalUs)
  }

  /** The call tree of [startUs, endUs], or undefined when the sampler is off or too many wait. */
  async treeOf (startUs: number, endUs: number): Promise<CallTree | undefined> {
    const profile = await this.#profileOf(startUs, endUs)
    return profile === undefined ? undefined : treeOf(profile, startUs, endUs, this.#intervalUs)
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


/** The call tree of the samples in a window: only the nodes on a sampled stack. */
function treeOf (indexed: IndexedProfile, startUs: number, endUs: number, intervalUs: number): CallTree {
  const { profile, byId, parents } = indexed
  const self = new Map<number, number>()
  const samples = forEachSample(indexed, startUs, endUs, (id, i, time) => {
    self.set(id, (self.get(id) ?? 0) + sampleWeight(profile, i, time, endUs, intervalUs))
  })
  // totals: each sample counts for its node and every ancestor
  const total = new Map<number, number>()
  for (const [id, n] of self) {
    for (let at: number | undefined = id; at !== undefined && !IGNORED.has(byId.get(at)?.callFrame.functionName ?? ''); at = parents.get(at)) {
      total.set(at, (total.get(at) ?? 0) + n)
    }
  }
  const frames: Frame[] = []
  const frameIndex = new Map<string, number>()
  const nodeIndex = new Map<number, number>()
  const nodes: CallTree['nodes'] = []
  // parents first: visit from the root down
  const visit = (id: number, parent: number): void => {
    const node = byId.get(id)!
    let index = parent
    if (total.has(id)) {
      const frame = frameOf(node)
      const key = `${frame.functionName}\u0000${frame.url}\u0000${frame.line}`
      let f = frameIndex.get(key)
      if (f === undefined) { f = frames.length; frames.push(frame); frameIndex.set(key, f) }
      index = nodes.length
      nodes.push([f, parent, self.get(id) ?? 0, total.get(id)!])
      nodeIndex.set(id, index)
    }
    for (const child of node.children ?? []) if (total.has(child)) visit(child, index)
  }
  const root = indexed.root
  if (root !== undefined) for (const child of root.children ?? []) if (total.has(child)) visit(child, -1)
  return { intervalUs, samples, frames, nodes }
}

/** Idle, the profiler's own bookkeeping and the root say nothing about a request. */
const IGNORED = new Set(['(idle)', '(program)', '(garbage collector)', '(root)'])

/**
 * The µs a sample stands for: the time until the next sample (V8's ticks slip when the machine is
 * busy, and DevTools counts time the same way), cut at the window's end and at 10 intervals.
 */
function sampleWeight (profile: Profile, index: number, time: number, endUs: number, intervalUs: number): number {
  return Math.max(0, Math.min(profile.timeDeltas[index + 1] ?? intervalUs, endUs - time, 10 * intervalUs))
}

/** Calls `fn` with the leaf node id and index of every sample in [startUs, endUs] that is not idle or bookkeeping; returns how many. */
function forEachSample ({ profile, byId, times, ascending }: IndexedProfile, startUs: number, endUs: number, fn: (id: number, index: number, time: number) => void): number {
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
    if (IGNORED.has(byId.get(id)?.callFrame.functionName ?? '')) continue
    samples++
    fn(id, i, time)
  }
  return samples
}

function emptyEvidence (intervalUs: number): StackEvidence {
  return { samples: 0, intervalUs, busyPercent: 0, hot: [] }
}

function frameOf (node: ProfileNode): Frame {
  return { functionName: node.callFrame.functionName === '' ? '(anonymous)' : node.callFrame.functionName, url: node.callFrame.url, line: node.callFrame.lineNumber + 1 }
}

/** Counts the samples of a window per leaf node and describes the hottest with their stacks. */
function evidenceOf (indexed: IndexedProfile, startUs: number, endUs: number, intervalUs: number): StackEvidence {
  const { profile, byId, parents } = indexed
  // a sample is charged to the innermost frame of JavaScript with a source (a native such as
  // performance.now() or a node: internal says less than the app code that called it)
  const ownerCache = new Map<number, number>()
  const ownerOf = (leaf: number): number => {
    let owner = ownerCache.get(leaf)
    if (owner !== undefined) return owner
    owner = leaf
    for (let at: number | undefined = leaf; at !== undefined; at = parents.get(at)) {
      const url = byId.get(at)?.callFrame.url ?? ''
      if (url !== '' && !url.startsWith('node:')) { owner = at; break }
    }
    ownerCache.set(leaf, owner)
    return owner
  }
  const counts = new Map<number, number>()
  let busyUs = 0
  const samples = forEachSample(indexed, startUs, endUs, (id, i, time) => {
    const owner = ownerOf(id)
    counts.set(owner, (counts.get(owner) ?? 0) + 1)
    busyUs += sampleWeight(profile, i, time, endUs, intervalUs)
  })
  const hot = [...counts].sort((a, b) => b[1] - a[1]).slice(0, HOT_FRAMES).map(([id, n]) => {
    const stack: Frame[] = []
    for (let at: number | undefined = id; at !== undefined && stack.length < STACK_DEPTH; at = parents.get(at)) {
      const node = byId.get(at)
      if (node === undefined || node.callFrame.functionName === '(root)') break
      stack.unshift(frameOf(node))
    }
    return { frame: frameOf(byId.get(id)!), samples: n, stack }
  })
  const busyPercent = Math.min(100, Math.round(busyUs / Math.max(intervalUs, endUs - startUs) * 100))
  return { samples, intervalUs, busyPercent, hot }
}
