import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { once } from 'node:events'

/**
 * A TCP proxy the test owns, between the plugin and the real Postgres server: `cut()` breaks every
 * connection and refuses new ones (an outage), `restore()` lets them through again. Other tests
 * sharing the server are not disturbed.
 */
export class TcpProxy {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  #up = true
  port = 0

  constructor (readonly targetPort = 5432, readonly targetHost = '127.0.0.1') {
    this.#server = createServer((client) => {
      if (!this.#up) { client.destroy(); return }
      const upstream = createConnection(this.targetPort, this.targetHost)
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket)
        socket.on('close', () => this.#sockets.delete(socket))
        socket.on('error', () => {})
      }
      client.pipe(upstream).pipe(client)
      client.on('close', () => upstream.destroy())
      upstream.on('close', () => client.destroy())
    })
  }

  async start (): Promise<this> {
    this.#server.listen(0, '127.0.0.1')
    await once(this.#server, 'listening')
    this.port = (this.#server.address() as { port: number }).port
    return this
  }

  url (database = 'test'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`
  }

  cut (): void {
    this.#up = false
    for (const socket of this.#sockets) socket.destroy()
  }

  restore (): void {
    this.#up = true
  }

  async close (): Promise<void> {
    this.cut()
    await new Promise((resolve) => this.#server.close(resolve))
  }
}
