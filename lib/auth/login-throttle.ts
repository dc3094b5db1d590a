/** What the throttle remembers per account and per client. */
interface Attempts {
  /** Attempts since the last success (an attempt counts as failed until it succeeds). */
  failures: number
  /** No attempt for this key before this time (ms). */
  nextAtMs: number
  lastAtMs: number
}

/** How the throttle ramps. */
export interface LoginThrottleOptions {
  /** Attempts per account and per client that go through at once; the next one waits. */
  freeAttempts: number
  /** Failures are forgotten after this long without an attempt. */
  forgetAfterMs: number
  /** The delay after the free attempts starts at 1 s and doubles up to this. */
  maxDelayMs: number
}

const FIRST_DELAY_MS = 1_000
/** Keys remembered at most; past it, the least recently used go (an attacker rotating names or IPs cannot grow memory). */
const MAX_KEYS = 10_000

/**
 * A progressive login delay per account and per client. Each attempt moves the key's next allowed
 * attempt further out (1 s, 2 s, 4 s … up to `maxDelayMs`, after `freeAttempts`), before the password
 * is checked, so concurrent guesses are counted too; a failure restarts the delay from the end of the
 * check; a success clears both keys. Keyed by account, a
 * client rotating `X-Forwarded-For` still gets one guess per delay on an account; and since nothing
 * is ever locked for longer than `maxDelayMs`, failures sent "from" someone else's address or at
 * someone else's account delay that user's correct login by at most that long (a hard lockout would
 * let anyone lock any user out).
 *
 * ### Examples
 * ```ts
 * const throttle = new LoginThrottle({ freeAttempts: 5, forgetAfterMs: 60_000, maxDelayMs: 30_000 })
 * const waitMs = throttle.attempt([`account:${username}`, `client:${ip}`])
 * if (waitMs > 0) reply.code(429).header('retry-after', Math.ceil(waitMs / 1000))
 * ```
 */
export class LoginThrottle {
  readonly #options: LoginThrottleOptions
  readonly #keys = new Map<string, Attempts>()

  constructor (options: LoginThrottleOptions) {
    this.#options = options
  }

  /**
   * Counts an attempt on every key and returns 0, or returns how long to wait (ms) when any key's
   * delay has not passed (the attempt is then not counted).
   */
  attempt (keys: string[], nowMs = Date.now()): number {
    const states = keys.map((key) => this.#state(key, nowMs))
    const waitMs = Math.max(0, ...states.map((state) => state.nextAtMs - nowMs))
    if (waitMs > 0) return waitMs
    for (const state of states) {
      state.failures++
      state.lastAtMs = nowMs
      state.nextAtMs = nowMs + this.#delayAfter(state.failures)
    }
    return 0
  }

  /** A wrong password: the delay runs from now, when the check ended (a slow check must not eat it). */
  failed (keys: string[], nowMs = Date.now()): void {
    for (const key of keys) {
      const state = this.#keys.get(key)
      if (state !== undefined) state.nextAtMs = Math.max(state.nextAtMs, nowMs + this.#delayAfter(state.failures))
    }
  }

  /** A correct password: the keys start afresh. */
  succeed (keys: string[]): void {
    for (const key of keys) this.#keys.delete(key)
  }

  /** After `freeAttempts` failures the next attempt waits 1 s, then 2 s, 4 s … */
  #delayAfter (failures: number): number {
    const over = failures - this.#options.freeAttempts
    return over < 0 ? 0 : Math.min(this.#options.maxDelayMs, FIRST_DELAY_MS * 2 ** Math.min(over, 30))
  }

  #state (key: string, nowMs: number): Attempts {
    let state = this.#keys.get(key)
    if (state !== undefined && nowMs - state.lastAtMs > this.#options.forgetAfterMs && nowMs >= state.nextAtMs) {
      this.#keys.delete(key)
      state = undefined
    }
    if (state === undefined) {
      state = { failures: 0, nextAtMs: 0, lastAtMs: nowMs }
      if (this.#keys.size >= MAX_KEYS) this.#keys.delete(this.#keys.keys().next().value!)
    } else {
      // most recently used last, so the first key is the one to evict
      this.#keys.delete(key)
    }
    this.#keys.set(key, state)
    return state
  }
}

/**
 * At most `size` password hashes computed at once, `queue` more waiting; past that `acquire` resolves
 * false at once. scrypt takes ~30 ms and 32 MB per check: unbounded, a burst of logins would take every
 * core (and libuv's thread pool, which the host's file and DNS work share).
 */
export class WorkSlots {
  readonly #size: number
  readonly #queue: number
  #busy = 0
  readonly #waiting: Array<() => void> = []

  constructor (size: number, queue: number) {
    this.#size = size
    this.#queue = queue
  }

  /** Runs `work` in a slot; undefined when every slot and the queue are taken. */
  async run<T> (work: () => Promise<T>): Promise<T | undefined> {
    if (this.#busy >= this.#size) {
      if (this.#waiting.length >= this.#queue) return undefined
      await new Promise<void>((resolve) => this.#waiting.push(resolve))
    } else {
      this.#busy++
    }
    try {
      return await work()
    } finally {
      // hand the slot straight to the next waiter, or free it
      const next = this.#waiting.shift()
      if (next !== undefined) next(); else this.#busy--
    }
  }
}
