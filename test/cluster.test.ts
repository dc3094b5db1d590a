import t from 'tap'
import cluster, { type Worker } from 'node:cluster'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { AggregatorRegistry } from 'prom-client'
import { POSTGRES_URL, backend } from './helpers.js'

// Workers share one PostgreSQL database (PGlite belongs to one process).
t.test('under node:cluster the primary serves the summed metrics of every worker', async (t) => {
  const store = await backend('postgres')
  t.teardown(store.cleanup)
  cluster.setupPrimary({ exec: fileURLToPath(new URL('./fixtures/cluster-worker.ts', import.meta.url)), silent: true })
  const workers: Worker[] = []
  const ports: number[] = []
  for (let i = 0; i < 2; i++) {
    const worker = cluster.fork({ FMD_DATABASE: POSTGRES_URL, FMD_PREFIX: store.prefix })
    workers.push(worker)
    const [message] = await once(worker, 'message') as [{ port: number }]
    ports.push(message.port)
  }
  t.teardown(async () => {
    for (const worker of workers) {
      worker.send('stop')
      await once(worker, 'exit')
    }
  })

  const hit = async (port: number, path: string, times: number): Promise<void> => {
    for (let i = 0; i < times; i++) await (await fetch(`http://127.0.0.1:${port}${path}`)).arrayBuffer()
  }
  // workers share one listening socket (cluster round-robin): what matters is the sum
  await hit(ports[0]!, '/users/1', 10)
  await hit(ports[1]!, '/users/2', 7)
  await hit(ports[1]!, '/fail', 3)

  const aggregated = await new AggregatorRegistry().clusterMetrics()
  t.match(aggregated, /^http_request_duration_seconds_count\{method="GET",route="\/users\/:id",status_code="200"\} 17$/m, 'counts are summed')
  t.match(aggregated, /^http_request_duration_seconds_count\{method="GET",route="\/fail",status_code="500"\} 3$/m)
  t.match(aggregated, /^http_request_duration_seconds_bucket\{method="GET",route="\/users\/:id",status_code="200",le="\+Inf"\} 17$/m, 'buckets too')
  t.match(aggregated, /^fastify_monitor_app_info\{version="unknown"\} 1$/m, 'the info metric stays 1')
  t.match(aggregated, /^fastify_monitor_database_up 1$/m, 'up only when every worker is')
})
