import { isTimeZone } from '../queries/range.js'
import { createTask, validate as validCron, type ScheduledTask } from 'node-cron'
import { sql, type Kysely } from 'kysely'
import type { FastifyBaseLogger } from 'fastify'
import type { Database } from '../db/database.js'
import { GraphError } from '../errors.js'
import { DEFAULT_PROJECT } from '../protocol.js'
import { ensureProject } from '../queries/projects.js'

/** How long a graph's function may run before the run counts as failed, unless `timeoutMs` says. */
export const DEFAULT_GRAPH_TIMEOUT_MS = 10_000
/** Longest graph name: it is a Prometheus label value and a key in the database. */
export const MAX_GRAPH_NAME_LENGTH = 200

/** A graph's function: sync or async, returning a finite number. */
export type GraphFunction = () => number | Promise<number>

/**
 * When a custom graph runs: a cron expression (node-cron: five fields, or six with seconds first; an
 * optional IANA `timezone`) or a fixed interval in seconds. `timeoutMs` bounds one run.
 */
export type GraphSchedule =
  | { cron: string, timezone?: string, everySeconds?: undefined, timeoutMs?: number }
  | { everySeconds: number, cron?: undefined, timezone?: undefined, timeoutMs?: number }

/** A graph as this process knows it. */
export interface GraphStatus {
  name: string
  schedule: string
  lastValue: number | null
  lastRunAt: Date | null
  lastError: string | null
  /** Runs of this process that threw, returned no finite number or timed out. */
  errors: number
  /** Runs of this process that stored a value. */
  runs: number
}

interface Graph extends GraphStatus {
  fn: GraphFunction
  timeoutMs: number
  /** Set while a run is in progress: a graph's runs never overlap. */
  running: Promise<void> | undefined
  /** The first failure is logged; the next ones only counted, until a run succeeds again. */
  failing: boolean
  stop: () => void
}

/** What the graphs need from the plugin. */
export interface GraphDeps {
  db: Kysely<Database>
  log: FastifyBaseLogger
  /** Resolves once the database is ready: ticks before it wait (the database may still be starting). */
  ready: Promise<void>
  /** This process's instance token (its row in `instance` names the process that ran a tick). */
  instanceToken: string
  /** The project the graphs belong to: the app's `project` option (created if new). Default `default`. */
  project?: string
}

const SCHEDULE_KEYS = ['cron', 'timezone', 'everySeconds', 'timeoutMs']

/** Checks a graph's arguments; the message names what is wrong. */
function check (name: unknown, fn: unknown, schedule: unknown): string | undefined {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_GRAPH_NAME_LENGTH) return `the name must be a string of 1 to ${MAX_GRAPH_NAME_LENGTH} characters`
  if (typeof fn !== 'function') return 'the second argument must be a function returning a number'
  if (typeof schedule !== 'object' || schedule === null) return 'the third argument must be { cron } or { everySeconds }'
  const s = schedule as Record<string, unknown>
  const unknown = Object.keys(s).find((key) => !SCHEDULE_KEYS.includes(key))
  if (unknown !== undefined) return `the schedule has no "${unknown}": it takes ${SCHEDULE_KEYS.join(', ')}`
  if ((s.cron === undefined) === (s.everySeconds === undefined)) return 'give exactly one of cron and everySeconds'
  if (s.cron !== undefined && (typeof s.cron !== 'string' || !validCron(s.cron))) return `cron "${String(s.cron)}" is not a valid cron expression`
  if (s.timezone !== undefined && (typeof s.timezone !== 'string' || !isTimeZone(s.timezone))) return `timezone "${String(s.timezone)}" is not an IANA time zone`
  if (s.everySeconds !== undefined && !(Number.isInteger(s.everySeconds) && (s.everySeconds as number) >= 1 && (s.everySeconds as number) <= 86_400)) return 'everySeconds must be an integer from 1 to 86400'
  if (s.timeoutMs !== undefined && !(Number.isInteger(s.timeoutMs) && (s.timeoutMs as number) >= 1)) return 'timeoutMs must be a positive integer'
  return undefined
}

/**
 * The schedule as stored and shown: `cron:<expression>[ (<tz>)]` or `every:<n>s`. The time zone in
 * parentheses: after a space alone it read as one more field of the expression (a six-field cron).
 */
function describe (schedule: GraphSchedule): string {
  return schedule.cron !== undefined ? `cron:${schedule.cron}${schedule.timezone === undefined ? '' : ` (${schedule.timezone})`}` : `every:${schedule.everySeconds}s`
}

/** Runs `fn` and waits at most `ms` for it; a late run is abandoned (a function cannot be cancelled). */
async function withTimeout (fn: GraphFunction, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      // a synchronous throw becomes a rejection here
      Promise.resolve().then(fn),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no value within ${ms} ms`)), ms) })
    ])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Custom graphs (`app.monitor.addGraph`): a function run on a schedule whose value is stored with its
 * time, like Flask-MonitoringDashboard's "custom graphs". Each tick is first claimed in `graph_run`
 * (project, graph, tick) — its primary key lets one insert win — so processes sharing a database run a
 * tick once; another project's graph of the same name is another graph.
 * A failing, non-numeric or hanging function is logged once, counted, and the schedule goes on.
 */
export class CustomGraphs {
  readonly #graphs = new Map<string, Graph>()
  readonly #deps: GraphDeps
  /** False from a tick that could not be stored until one is. */
  #storing = true
  #closed = false
  /** The project's id, looked up (or made) once the database is ready; looked up again after a failure. */
  #projectId: Promise<number> | undefined

  constructor (deps: GraphDeps) { this.#deps = deps }

  /** Adds a graph and starts its schedule; throws {@link GraphError} for a bad argument or a name already used. */
  add (name: string, fn: GraphFunction, schedule: GraphSchedule): void {
    const problem = check(name, fn, schedule)
    if (problem !== undefined) throw new GraphError(String(name), problem)
    if (this.#graphs.has(name)) throw new GraphError(name, 'a graph of that name was already added')
    if (this.#closed) throw new GraphError(name, 'the app is closed')
    const graph: Graph = {
      name,
      schedule: describe(schedule),
      lastValue: null,
      lastRunAt: null,
      lastError: null,
      errors: 0,
      runs: 0,
      fn,
      timeoutMs: schedule.timeoutMs ?? DEFAULT_GRAPH_TIMEOUT_MS,
      running: undefined,
      failing: false,
      stop: () => {}
    }
    this.#graphs.set(name, graph)
    graph.stop = schedule.cron !== undefined ? this.#cron(graph, schedule.cron, schedule.timezone) : this.#every(graph, schedule.everySeconds * 1000)
    this.#register(graph).catch((err: unknown) => { this.#deps.log.warn({ err, graph: name }, 'fastify-monitoring-dashboard: custom graph not registered in the database') })
  }

  /** The graphs of this process. */
  list (): GraphStatus[] {
    return [...this.#graphs.values()].map(({ name, schedule, lastValue, lastRunAt, lastError, errors, runs }) => ({ name, schedule, lastValue, lastRunAt, lastError, errors, runs }))
  }

  /** Stops every schedule and waits for the runs in progress (each bounded by its timeout): nothing runs after. */
  async close (): Promise<void> {
    this.#closed = true
    for (const graph of this.#graphs.values()) graph.stop()
    await Promise.all([...this.#graphs.values()].map(async (graph) => await graph.running))
  }

  async #project (): Promise<number> {
    this.#projectId ??= this.#deps.ready.then(async () => await ensureProject(this.#deps.db, this.#deps.project ?? DEFAULT_PROJECT))
    try {
      return await this.#projectId
    } catch (err) {
      this.#projectId = undefined
      throw err
    }
  }

  async #register (graph: Graph): Promise<void> {
    const projectId = await this.#project()
    await this.#deps.db.insertInto('graph').values({ project_id: projectId, name: graph.name, schedule: graph.schedule })
      .onConflict((oc) => oc.columns(['project_id', 'name']).doUpdateSet({ schedule: graph.schedule, updated_at: new Date() })).execute()
  }

  #cron (graph: Graph, expression: string, timezone: string | undefined): () => void {
    // node-cron keeps every task in a process-wide registry until it is destroyed; unref: a graph
    // never keeps a process alive; the tick's scheduled time (not when it fired) names it across processes
    const task: ScheduledTask = createTask(expression, (context) => { this.#tick(graph, context.date) }, {
      timezone,
      unref: true,
      suppressMissedWarning: true,
      logger: {
        info: () => {},
        debug: () => {},
        warn: (message) => { this.#deps.log.warn(`fastify-monitoring-dashboard: custom graph "${graph.name}": ${message}`) },
        error: (message, err) => { this.#deps.log.warn({ err }, `fastify-monitoring-dashboard: custom graph "${graph.name}": ${String(message)}`) }
      }
    })
    void task.start()
    return () => { void task.destroy() }
  }

  #every (graph: Graph, periodMs: number): () => void {
    let timer: NodeJS.Timeout | undefined
    // ticks fall on multiples of the period since the epoch, so every process names them alike
    const arm = (): void => {
      const next = (Math.floor(Date.now() / periodMs) + 1) * periodMs
      timer = setTimeout(() => {
        this.#tick(graph, new Date(next))
        arm()
      }, next - Date.now())
      timer.unref()
    }
    arm()
    return () => { clearTimeout(timer) }
  }

  #tick (graph: Graph, at: Date): void {
    if (this.#closed || graph.running !== undefined) return
    graph.running = this.#run(graph, new Date(Math.floor(at.getTime() / 1000) * 1000))
      .then(() => {
        if (!this.#storing) {
          this.#storing = true
          this.#deps.log.info('fastify-monitoring-dashboard: custom graph ticks are stored again')
        }
      }, (err: unknown) => {
        // once per outage, not once per tick of every graph; a tick that cannot be stored is lost, not buffered
        if (!this.#storing) return
        this.#storing = false
        this.#deps.log.warn({ err, graph: graph.name }, 'fastify-monitoring-dashboard: custom graph ticks cannot be stored; they are lost until the database answers (logged once)')
      })
      .finally(() => { graph.running = undefined })
  }

  async #run (graph: Graph, tick: Date): Promise<void> {
    const { db } = this.#deps
    const projectId = await this.#project()
    if (this.#closed) return
    const claimed = await sql<{ graph: string }>`insert into ${sql.table('graph_run')} (project_id, graph, tick, instance_id)
      values (${projectId}, ${graph.name}, ${tick}, (select id from ${sql.table('instance')} where token = ${this.#deps.instanceToken}))
      on conflict do nothing returning graph`.execute(db)
    // another process sharing the database runs this tick
    if (claimed.rows.length === 0) return
    const started = performance.now()
    let value: number | null = null
    let error: string | null = null
    try {
      const result = await withTimeout(graph.fn, graph.timeoutMs)
      if (typeof result === 'number' && Number.isFinite(result)) value = result
      else error = `returned ${typeof result === 'number' ? String(result) : typeof result}, not a finite number`
    } catch (err) {
      error = err instanceof Error ? err.message : String(err)
    }
    const durationMs = performance.now() - started
    graph.lastRunAt = tick
    if (error === null) {
      graph.runs++
      graph.lastValue = value
      graph.lastError = null
      if (graph.failing) this.#deps.log.info(`fastify-monitoring-dashboard: custom graph "${graph.name}" has a value again`)
      graph.failing = false
    } else {
      graph.errors++
      graph.lastError = error
      if (!graph.failing) this.#deps.log.warn(`fastify-monitoring-dashboard: custom graph "${graph.name}" failed: ${error} (further failures are counted in fastify_monitor_custom_graph_errors_total until it succeeds)`)
      graph.failing = true
    }
    await db.updateTable('graph_run').set({ value, error: error?.slice(0, 1000) ?? null, duration_ms: durationMs })
      .where('project_id', '=', projectId).where('graph', '=', graph.name).where('tick', '=', tick).execute()
  }
}
