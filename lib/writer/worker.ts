/**
 * The writer's thread (entry file). It owns the database connection (PGlite must have exactly one
 * owner, and a `pg` insert of thousands of rows costs milliseconds of CPU): the request thread only
 * posts compact batches here, so no SQL work happens on the thread serving requests. All the work is
 * in {@link WriterThread}.
 */
import { parentPort, workerData } from 'node:worker_threads'
import type { ToWorker, WorkerInit } from '../protocol.js'
import { WriterThread } from './writer-thread.js'

const port = parentPort!
const thread = new WriterThread(workerData as WorkerInit, (message) => port.postMessage(message))
port.on('message', (message: ToWorker) => thread.receive(message))
thread.start()
