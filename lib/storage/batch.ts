/**
 * Requests recorded on the main thread, column by column, as they travel to the writer's thread.
 * Typed arrays move without copying (transferred); the group-by and IP strings are stored once
 * per batch in `strings` and referenced by index, so a repeated IP is cloned once.
 */
export interface RecordBatch {
  length: number
  /** Index of the endpoint in the main thread's endpoint list (not the database id). */
  endpoint: Int32Array
  timeMs: Float64Array
  durationMs: Float64Array
  statusCode: Uint16Array
  /** The request's number in this process (1, 2, …): with the process's token it names the request in exemplars. */
  seq: Float64Array
  /** Index into `strings`, or -1 for none. */
  group: Int32Array
  ip: Int32Array
  strings: string[]
}

/** Last time each level-0 endpoint was requested: pairs of endpoint index and time in ms. */
export interface LastSeen {
  endpoint: number[]
  timeMs: number[]
}

/** An endpoint as the main thread knows it. */
export interface EndpointKey {
  index: number
  method: string
  route: string
}

export function createRecordBatch (capacity: number): RecordBatch {
  return {
    length: 0,
    endpoint: new Int32Array(capacity),
    timeMs: new Float64Array(capacity),
    durationMs: new Float64Array(capacity),
    statusCode: new Uint16Array(capacity),
    seq: new Float64Array(capacity),
    group: new Int32Array(capacity),
    ip: new Int32Array(capacity),
    strings: []
  }
}

/** The buffers to transfer with `postMessage`. */
export function transferList (batch: RecordBatch): ArrayBuffer[] {
  return [batch.endpoint, batch.timeMs, batch.durationMs, batch.statusCode, batch.seq, batch.group, batch.ip]
    .map((column) => column.buffer as ArrayBuffer)
}
