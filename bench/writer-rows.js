// The per-row JavaScript of recording, without a database or threads: the collector's `record`, the writer's
// units (Writer, as its thread runs it) and their binary COPY rows (requestCopyData). Natively its ns per row
// move by 2× from run to run on a shared VM; counted by callgrind they are steady, so compare two builds so:
//
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/rows.%p node --single-threaded bench/writer-rows.js [dist folder]
//
// and read "Collected" (instructions for 8 passes of 200,000 rows, plus node's start-up, the same for both).
const dist = new URL(`file://${process.argv[2] ?? new URL('../dist', import.meta.url).pathname}/`)
const { Writer } = await import(new URL('writer/writer.js', dist).href)
const { requestCopyData } = await import(new URL('writer/store.js', dist).href)
const { Collector } = await import(new URL('collection/collector.js', dist).href)

const ROWS = 200_000
const PASSES = 8
// requests of three endpoints from three clients, sixteen in a row from each
const IPS = ['10.0.0.1', '10.0.0.2', '192.168.1.20']

async function pass () {
  let copyNs = 0
  let rows = 0
  const sink = {
    target: 'nothing',
    resolveEndpoint: (index) => ({ id: index + 1, level: 1 }),
    write: async (unit) => {
      const start = process.hrtime.bigint()
      requestCopyData(unit, '131072', 1, 1)
      copyNs += Number(process.hrtime.bigint() - start)
      rows += unit.endpointId.length
    },
    ensurePartitions: async () => {},
    touch: async () => {},
    log: () => {},
    onStats: () => {}
  }
  const batches = []
  const collector = new Collector((batch) => { if (batch !== undefined) batches.push(batch) }, 60_000)
  const recordStart = process.hrtime.bigint()
  for (let i = 0; i < ROWS; i++) collector.record(i % 3, 1.7e12 + i, 1.5, 200, null, IPS[(i >> 4) % 3])
  collector.stop()
  const recordNs = Number(process.hrtime.bigint() - recordStart)
  const writer = new Writer(sink, { maxBufferedRecords: 10 * ROWS, maxBatchSize: 5000, retryMaxDelayMs: 1000 })
  const writeStart = process.hrtime.bigint()
  for (const batch of batches) writer.enqueue(batch)
  await writer.drain()
  const writeNs = Number(process.hrtime.bigint() - writeStart)
  return { record: recordNs / ROWS, unit: (writeNs - copyNs) / rows, copy: copyNs / rows }
}

let last
for (let i = 0; i < PASSES; i++) last = await pass()
console.log(`ns per row in the last of ${PASSES} passes: record ${last.record.toFixed(0)}, into a unit ${last.unit.toFixed(0)}, COPY row ${last.copy.toFixed(0)}`)
