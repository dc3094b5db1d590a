import { OverflowCounts, type OutlierOverflow, type OutlierRecord, type ProfileRecord, type ToWorker } from '../protocol.js'

/** Outliers waiting to be stored: few and large, so bounded by count; the oldest go first. */
const MAX_PENDING_OUTLIERS = 1_000
const MAX_PENDING_PROFILES = 2_000

/** A share of what levels 2 and 3 found, taken to be stored or sent. */
export interface DiagnosticsPart {
  outliers: OutlierRecord[]
  overflow: OutlierOverflow[]
  profiles: ProfileRecord[]
}

/**
 * Outliers, their overflow counts and call trees from the request thread, waiting in a writer's thread
 * for the database (or the collector). Bounded: past 1,000 outliers the oldest are dropped but still
 * counted as found (in the per-hour overflow, which takes memory per endpoint and hour, not per outlier);
 * past 2,000 call trees the oldest are dropped.
 */
export class PendingDiagnostics {
  #outliers: OutlierRecord[] = []
  readonly #overflow = new OverflowCounts()
  #profiles: ProfileRecord[] = []
  /** `outliers.maxPerEndpointHour`, sent with the outliers. */
  keepPerHour = 100

  get empty (): boolean {
    return this.#outliers.length === 0 && this.#overflow.size === 0 && this.#profiles.length === 0
  }

  add (message: Extract<ToWorker, { type: 'outliers' }>): void {
    this.keepPerHour = message.keepPerHour
    for (const [index, hourMs, count] of message.overflow) this.#overflow.add(index, hourMs, count)
    this.#outliers.push(...message.outliers)
    this.#profiles.push(...message.profiles)
    this.#bound()
  }

  /**
   * Takes out what endpoints `known` accepts (the others wait for their endpoint's registration), at most
   * `maxItems` of each kind, of at most `maxEndpoints` endpoints and, with `sizeOf`, items up to `maxBytes`
   * in all (the first always).
   */
  take (known: (endpointIndex: number) => boolean, { maxItems = Infinity, maxEndpoints = Infinity, maxBytes = Infinity, sizeOf }: { maxItems?: number, maxEndpoints?: number, maxBytes?: number, sizeOf?: (item: unknown) => number } = {}): DiagnosticsPart {
    let bytes = 0
    const endpoints = new Set<number>()
    /** The part may name the item's endpoint: it does already, or there is room for one more. */
    const room = (index: number): boolean => endpoints.has(index) || (endpoints.size < maxEndpoints && known(index))
    const fits = (item: unknown, taken: number): boolean => {
      if (taken >= maxItems) return false
      if (sizeOf === undefined) return true
      const size = sizeOf(item)
      if (bytes > 0 && bytes + size > maxBytes) return false
      bytes += size
      return true
    }
    const pick = <T extends { endpointIndex: number }>(items: T[]): [taken: T[], left: T[]] => {
      const taken: T[] = []
      const left: T[] = []
      for (const item of items) {
        if (room(item.endpointIndex) && fits(item, taken.length)) {
          endpoints.add(item.endpointIndex)
          taken.push(item)
        } else {
          left.push(item)
        }
      }
      return [taken, left]
    }
    const [outliers, outliersLeft] = pick(this.#outliers)
    const [profiles, profilesLeft] = pick(this.#profiles)
    this.#outliers = outliersLeft
    this.#profiles = profilesLeft
    let overflowTaken = 0
    const overflow = this.#overflow.take((index) => {
      if (overflowTaken === maxItems || !room(index)) return false
      endpoints.add(index)
      overflowTaken++
      return true
    })
    return { outliers, overflow, profiles }
  }

  /** A part that could not be stored now: back in front, to go first next time. */
  putBack (part: DiagnosticsPart): void {
    for (const [index, hourMs, count] of part.overflow) this.#overflow.add(index, hourMs, count)
    this.#outliers.unshift(...part.outliers)
    this.#profiles.unshift(...part.profiles)
    this.#bound()
  }

  /** A part refused for good (the rows themselves are wrong): its outliers stay counted as found. */
  drop (part: DiagnosticsPart): void {
    for (const [index, hourMs, count] of part.overflow) this.#overflow.add(index, hourMs, count)
    for (const o of part.outliers) this.#overflow.add(o.endpointIndex, o.timeMs)
  }

  #bound (): void {
    if (this.#profiles.length > MAX_PENDING_PROFILES) this.#profiles.splice(0, this.#profiles.length - MAX_PENDING_PROFILES)
    if (this.#outliers.length > MAX_PENDING_OUTLIERS) {
      for (const o of this.#outliers.splice(0, this.#outliers.length - MAX_PENDING_OUTLIERS)) this.#overflow.add(o.endpointIndex, o.timeMs)
    }
  }
}
