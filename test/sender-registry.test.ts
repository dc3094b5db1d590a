// The collector's memory of senders' endpoints and instances (lib/writer/sender-registry.ts): what lets a
// batch of known endpoints from a known process skip their five registration statements, without a level
// set by an admin reaching the sender later than levelPollIntervalMs.
import t from 'tap'
import { SenderRegistry } from '../lib/writer/sender-registry.js'

const keys = [{ index: 0, method: 'GET', route: '/a' }, { index: 1, method: 'POST', route: '/a' }]

t.test('endpoints are answered from memory until their level is levelPollIntervalMs old', async (t) => {
  const registry = new SenderRegistry(1_000)
  t.equal(registry.endpoints(1, keys, 0), undefined, 'unknown at first')
  t.same(registry.knowEndpoints(1, keys, [{ id: 10, level: 1 }, { id: 11, level: 2 }], 0), [{ id: 10, level: 1 }, { id: 11, level: 2 }], 'returns what it was given')
  t.same(registry.endpoints(1, [keys[1]!, keys[0]!], 999)?.map((e) => [e.id, e.level]), [[11, 2], [10, 1]], 'known, in the order asked')
  t.equal(registry.endpoints(1, keys, 1_000), undefined, 'read again once the level is as old as the poll interval')
  t.equal(registry.endpoints(2, keys, 10), undefined, 'another project\'s endpoints of the same routes are not these')
  t.equal(registry.endpoints(1, [...keys, { index: 2, method: 'GET', route: '/b' }], 10), undefined, 'one unknown endpoint: the whole batch is registered')
})

t.test('a level this process stores is answered at once', async (t) => {
  const registry = new SenderRegistry(60_000)
  registry.knowEndpoints(1, keys, [{ id: 10, level: 1 }, { id: 11, level: 1 }], 0)
  registry.levelChanged(11, 0)
  registry.levelChanged(99, 3)
  t.same(registry.endpoints(1, keys, 1)?.map((e) => e.level), [1, 0])
})

t.test('instances are known by version, token, host and pid', async (t) => {
  const registry = new SenderRegistry(1_000)
  const sender = { version: '1.0', token: 'tok-a', host: 'h', pid: 1 }
  t.equal(registry.instance(sender), undefined)
  registry.knowInstance(sender, { versionId: 3, instanceId: 4 })
  t.same(registry.instance({ ...sender }), { versionId: 3, instanceId: 4 })
  t.equal(registry.instance({ ...sender, version: '1.1' }), undefined, 'a new version of the same process is registered')
  t.equal(registry.instance({ ...sender, pid: 2 }), undefined, 'a restart (new pid) is registered')
})
