import t from 'tap'
import { MergedSketch } from '../lib/queries/distribution.js'
import { bucketValue } from '../lib/db/rollup.js'

// Rollup rows of different periods cover different bucket ranges: merging grows the counts both ways.
t.test('sketches of different ranges merge bucket by bucket', async (t) => {
  const sketch = new MergedSketch()
  t.equal(sketch.distribution(), undefined, 'nothing merged: no distribution')
  sketch.addText(10, '{1,2}')
  sketch.addText(5, '{5}') // below the range so far
  sketch.addText(11, '{0,0,3}') // above it
  sketch.addText(7, '{}') // an empty sketch adds nothing
  sketch.addText(-3, '{12}') // sub-millisecond buckets are negative
  t.same([...sketch.buckets()], [[-3, 12], [5, 5], [10, 1], [11, 2], [13, 3]])
  const d = sketch.distribution()!
  t.equal(d.count, 23)
  t.equal(d.min, bucketValue(-3))
  t.equal(d.max, bucketValue(13))
  // ranks: 12 in bucket -3, then 5 in 5 (13–17), 1 in 10 (18), 2 in 11 (19–20), 3 in 13 (21–23)
  t.equal(d.q1, bucketValue(-3), 'rank 5.75 is in the first bucket')
  t.equal(d.median, bucketValue(-3), 'rank 11.5 too')
  t.equal(d.q3, bucketValue(10), 'rank 17.25 reaches past bucket 5 to bucket 10')
  t.equal(d.p95, bucketValue(13))
  t.equal(d.p99, bucketValue(13))
})

t.test('a quantile on a whole count keeps its exact rank', async (t) => {
  const sketch = new MergedSketch()
  // 60 requests: 57 in bucket 1, 3 in bucket 2; 0.95 × 60 = 57 exactly (a hair above in floating point)
  sketch.addText(1, '{57,3}')
  t.equal(sketch.distribution()!.p95, bucketValue(1))
})
