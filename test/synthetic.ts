import type { SeedRequest } from '../lib/db/seed.js'

const HOUR_MS = 3_600_000
/** Requests per endpoint and version in {@link syntheticRequests}. */
export const PER_SIDE = 400

/** A seeded PRNG (mulberry32): tests draw the same "random" latencies every run. */
export function seeded (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** A log-normal draw (Box–Muller): latencies are skewed like this. */
export function logNormal (random: () => number, median: number, sigma: number): number {
  const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
  return median * Math.exp(sigma * z)
}

/**
 * Issue #16's known latencies: version v2 is 20% slower on /slower only, fails more on /failing only
 * (2% → 12% 5xx), the same distribution (other draws) on /same; /quiet has 5 requests a side.
 * v1 spans the first 12 hours from `start`, v2 the next 12.
 */
export function syntheticRequests (endpoint: Record<string, number>, start: number): SeedRequest[] {
  const random = seeded(16)
  const rows: SeedRequest[] = []
  for (const version of ['v1', 'v2']) {
    // v1 over the first 12 hours, v2 over the next 12: the same hours of the day do not matter here
    const base = start + (version === 'v1' ? 0 : 12 * HOUR_MS)
    for (let i = 0; i < PER_SIDE; i++) {
      const time = new Date(base + i * (12 * HOUR_MS / PER_SIDE))
      const slower = version === 'v2' ? 1.2 : 1
      rows.push({ endpointId: endpoint['/slower']!, time, durationMs: logNormal(random, 40, 0.3) * slower, statusCode: 200, version })
      rows.push({ endpointId: endpoint['/same']!, time, durationMs: logNormal(random, 40, 0.3), statusCode: 200, version })
      // 2% of v1's and 12% of v2's responses are 500s; latency unchanged
      const failRate = version === 'v2' ? 0.12 : 0.02
      rows.push({ endpointId: endpoint['/failing']!, time, durationMs: logNormal(random, 15, 0.3), statusCode: random() < failRate ? 500 : 200, version })
      if (i < 5) rows.push({ endpointId: endpoint['/quiet']!, time, durationMs: 5, statusCode: 200, version })
    }
  }
  return rows
}
