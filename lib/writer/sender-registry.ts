import type { EndpointKey } from '../protocol.js'

/** Entries kept of each kind; past it the cache starts over (the database still has everything). */
const MAX_ENTRIES = 50_000

interface KnownEndpoint {
  id: number
  level: number
  readAtMs: number
}

/** The process a batch came from, as the ingest route names it. */
export interface SenderInstance {
  version: string
  token: string
  host: string
  pid: number
}

/**
 * The collector's memory of what the database said about other processes' endpoints and instances.
 * Without it every ingested batch ran five statements (endpoints registered and read, version and
 * instance registered) before its rows; with it a batch of known endpoints from a known process runs none.
 *
 * Ids are kept for good: nothing deletes an endpoint, version or instance row. Levels are read again once
 * older than `levelMaxAgeMs` (the level poll interval), so a level set on another collector behind the
 * same load balancer reaches the senders within that; one set here is updated at once ({@link levelChanged}).
 */
export class SenderRegistry {
  readonly #levelMaxAgeMs: number
  readonly #endpoints = new Map<string, KnownEndpoint>()
  readonly #endpointsById = new Map<number, KnownEndpoint>()
  readonly #instances = new Map<string, { versionId: number, instanceId: number }>()

  constructor (levelMaxAgeMs: number) {
    this.#levelMaxAgeMs = levelMaxAgeMs
  }

  /** The endpoints' ids and levels in the order given, or undefined when one is unknown or its level is due a read. */
  endpoints (projectId: number, keys: readonly EndpointKey[], nowMs = Date.now()): Array<{ id: number, level: number }> | undefined {
    const known: KnownEndpoint[] = []
    for (const key of keys) {
      const endpoint = this.#endpoints.get(endpointKey(projectId, key))
      if (endpoint === undefined || nowMs - endpoint.readAtMs >= this.#levelMaxAgeMs) return undefined
      known.push(endpoint)
    }
    return known
  }

  /** Remembers what the database answered for `keys` (same order); returns it. */
  knowEndpoints (projectId: number, keys: readonly EndpointKey[], rows: Array<{ id: number, level: number }>, nowMs = Date.now()): Array<{ id: number, level: number }> {
    if (this.#endpoints.size + keys.length > MAX_ENTRIES) {
      this.#endpoints.clear()
      this.#endpointsById.clear()
    }
    keys.forEach((key, i) => {
      const endpoint = { id: rows[i]!.id, level: rows[i]!.level, readAtMs: nowMs }
      this.#endpoints.set(endpointKey(projectId, key), endpoint)
      this.#endpointsById.set(endpoint.id, endpoint)
    })
    return rows
  }

  /** A level this process stored: the next batch from the endpoint's sender is answered with it. */
  levelChanged (endpointId: number, level: number): void {
    const endpoint = this.#endpointsById.get(endpointId)
    if (endpoint !== undefined) endpoint.level = level
  }

  instance (sender: SenderInstance): { versionId: number, instanceId: number } | undefined {
    return this.#instances.get(instanceKey(sender))
  }

  knowInstance (sender: SenderInstance, ids: { versionId: number, instanceId: number }): { versionId: number, instanceId: number } {
    if (this.#instances.size >= MAX_ENTRIES) this.#instances.clear()
    this.#instances.set(instanceKey(sender), ids)
    return ids
  }
}

// NUL cannot occur in the parts: the ingest route's text is cleared of it before it gets here
const endpointKey = (projectId: number, key: EndpointKey): string => `${projectId}\u0000${key.method}\u0000${key.route}`
const instanceKey = (sender: SenderInstance): string => `${sender.version}\u0000${sender.token}\u0000${sender.host}\u0000${sender.pid}`
