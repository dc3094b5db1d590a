// A TCP proxy the tests and bench/outage.js own, between the plugin and the real PostgreSQL server:
// cut() breaks every connection and refuses new ones (an outage), restore() lets them through again.
// Plain JavaScript so the benches run it without a TypeScript loader; types in tcp-proxy.d.ts.
import { createConnection, createServer } from 'node:net'
import { once } from 'node:events'

export class TcpProxy {
  #server
  #sockets = new Set()
  #up = true
  port = 0

  constructor (targetPort = 5432, targetHost = '127.0.0.1') {
    this.#server = createServer((client) => {
      if (!this.#up) { client.destroy(); return }
      const upstream = createConnection(targetPort, targetHost)
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

  async start () {
    this.#server.listen(0, '127.0.0.1')
    await once(this.#server, 'listening')
    this.port = this.#server.address().port
    return this
  }

  url (database = 'test') {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`
  }

  cut () {
    this.#up = false
    for (const socket of this.#sockets) socket.destroy()
  }

  restore () {
    this.#up = true
  }

  async close () {
    this.cut()
    await new Promise((resolve) => this.#server.close(resolve))
  }
}
