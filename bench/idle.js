// node bench/idle.js [--seconds 30] [--settle 40] [--servers bare,level1-pglite,level1-postgres]: what each server costs per second
// while no request comes (timers, polls, probes), in CPU µs of the whole process. A plugin that sits in every
// app must cost next to nothing when the app has nothing to do.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'

const argv = process.argv.slice(2)
const arg = (name, fallback) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : fallback }
const SECONDS = Number(arg('seconds', 30))
// V8's memory reducer runs full collections for a while after start-up, and the plugin's start (migrations,
// first polls) is not idling either: measured only after this long
const SETTLE_SECONDS = Number(arg('settle', 40))
const SERVERS = arg('servers', 'bare,level1-pglite,level1-postgres').split(',')
const SERVER = new URL('./server.js', import.meta.url).pathname

const rows = []
for (const kind of SERVERS) {
  const child = fork(SERVER, [kind], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  await once(child, 'message')
  const sample = async () => { child.send('sample'); return (await once(child, 'message'))[0].cpu }
  await sleep(SETTLE_SECONDS * 1000)
  const before = await sample()
  await sleep(SECONDS * 1000)
  const after = await sample()
  child.send('stop')
  await once(child, 'exit')
  const us = (after.user - before.user) + (after.system - before.system)
  rows.push({ server: kind, 'CPU µs per second': Math.round(us / SECONDS), 'CPU %': (us / SECONDS / 1e4).toFixed(3) })
}
console.table(rows)
