/**
 * The writer's thread (entry file). It owns the database connection (PGlite must have exactly one
 * owner, and a `pg` insert of thousands of rows costs milliseconds of CPU), or with `remote` the HTTP
 * connection to the collector: the request thread only posts compact batches here, so no SQL or
 * network work happens on the thread serving requests. The work is in {@link WriterThread} and
 * {@link SenderThread}.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import { summarizeError, type FromWorker, type ToWorker, type WorkerInit } from '../protocol.js'

/** What runs the thread: handles the main thread's messages, talking back through the `send` it was made with. */
export interface ThreadHandler {
  start: () => void
  handle: (message: ToWorker) => Promise<unknown>
}

/**
 * Handles a message and answers those that carry an id. `endpoints` is answered by the handler itself,
 * once the endpoints are registered (which waits while the database or collector is down).
 */
export function answer (thread: ThreadHandler, message: ToWorker, send: (message: FromWorker) => void): void {
  thread.handle(message).then((result) => {
    if ('id' in message && message.type !== 'endpoints') send({ type: 'reply', id: message.id, result })
  }, (err: unknown) => {
    if ('id' in message) send({ type: 'reply', id: message.id, error: summarizeError(err) })
  })
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort
  const init = workerData as WorkerInit
  const send = (message: FromWorker): void => port.postMessage(message)
  // imported here, so the database's modules are never loaded by a sender and the other way round
  const thread: ThreadHandler = init.options.remote === undefined
    ? new (await import('./writer-thread.js')).WriterThread(init, send)
    : new (await import('./sender-thread.js')).SenderThread(init, send)
  port.on('message', (message: ToWorker) => answer(thread, message, send))
  thread.start()
}
