import t from 'tap'
import { Collector } from '../lib/collection/collector.js'
import { MAX_IP_LENGTH, type RecordBatch } from '../lib/protocol.js'

/** Every row's strings as the writer reads them: through the batch's own string table. */
function rowStrings (batch: RecordBatch): Array<[string | null, string | null]> {
  const text = (index: number): string | null => index < 0 ? null : batch.strings[index] ?? `missing #${index}`
  return Array.from({ length: batch.length }, (_, row) => [text(batch.group[row]!), text(batch.ip[row]!)])
}

t.test('each batch names its rows\' group and IP through its own string table, across batches and repeated clients', async (t) => {
  const batches: RecordBatch[] = []
  const collector = new Collector((batch) => { if (batch !== undefined) batches.push(batch) }, 60_000, 3)
  t.teardown(() => { collector.stop() })
  // one client's address string per connection: equal text, distinct strings
  const clientA = ['10.0.0.', '1'].join('')
  const clientAOtherSocket = ['10.0.0', '.1'].join('')
  const long = `${'f'.repeat(MAX_IP_LENGTH)}:tail`
  collector.record(0, 1, 1, 200, 'g1', clientA)
  collector.record(0, 2, 1, 200, null, clientAOtherSocket)
  collector.record(0, 3, 1, 200, 'g2', '10.0.0.2')
  // a new batch: the last IP of the one before is not one of this batch's strings yet
  collector.record(0, 4, 1, 200, 'g2', '10.0.0.2')
  collector.record(0, 5, 1, 200, '10.0.0.2', undefined)
  collector.record(0, 6, 1, 200, null, long)
  collector.record(0, 7, 1, 200, null, long)
  collector.flush()
  t.same(batches.map(rowStrings), [
    [['g1', '10.0.0.1'], [null, '10.0.0.1'], ['g2', '10.0.0.2']],
    [['g2', '10.0.0.2'], ['10.0.0.2', null], [null, long.slice(0, MAX_IP_LENGTH)]],
    [[null, long.slice(0, MAX_IP_LENGTH)]]
  ])
  t.same(batches.map((batch) => batch.strings.length), [4, 3, 1], 'a string is interned once per batch, a group and an IP of one text share it')
})
