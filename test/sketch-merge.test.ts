import t from 'tap'
import { sql } from 'kysely'
import { mergeSketchSql, type Sketch } from '../lib/db/rollup.js'
import { DIALECTS, openWriterStore } from './helpers.js'

/**
 * What merging two sketches must give: bucket by bucket the sum, over both ranges (an empty sketch's range
 * starts and ends at its offset; a stored row has counts, so only tests meet one).
 */
function merged (stored: Sketch, added: Sketch): Sketch {
  const offset = Math.min(stored.offset, added.offset)
  const end = Math.max(stored.offset + stored.counts.length, added.offset + added.counts.length)
  const counts = new Array<number>(end - offset).fill(0)
  for (const s of [stored, added]) s.counts.forEach((count, i) => { counts[s.offset + i - offset]! += count })
  return { offset, counts }
}

// every way two ranges can lie: inside at the start, middle and end, equal, past either end or both,
// apart on either side, and empty on either side
const CASES: Array<[string, Sketch, Sketch]> = [
  ['inside, at the start', { offset: 10, counts: [1, 2, 3, 4, 5] }, { offset: 10, counts: [7, 7] }],
  ['inside, in the middle', { offset: 10, counts: [1, 2, 3, 4, 5] }, { offset: 12, counts: [7] }],
  ['inside, at the end', { offset: 10, counts: [1, 2, 3, 4, 5] }, { offset: 13, counts: [7, 8] }],
  ['the same range', { offset: -3, counts: [1, 2, 3] }, { offset: -3, counts: [4, 5, 6] }],
  ['past the end', { offset: 10, counts: [1, 2] }, { offset: 11, counts: [5, 6, 7] }],
  ['below the start', { offset: 10, counts: [1, 2] }, { offset: 8, counts: [5, 6] }],
  ['past both ends', { offset: 10, counts: [1, 2] }, { offset: 9, counts: [1, 1, 1, 1, 1] }],
  ['apart, above', { offset: 0, counts: [1] }, { offset: 5, counts: [2] }],
  ['apart, below', { offset: 5, counts: [1] }, { offset: 0, counts: [2] }],
  ['nothing added', { offset: 4, counts: [1, 2] }, { offset: 5, counts: [] }],
  ['nothing stored', { offset: 0, counts: [] }, { offset: 3, counts: [1, 2] }]
]

// a pseudo-random but fixed set of pairs besides the cases above
let seed = 7
const next = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
for (let i = 0; i < 40; i++) {
  const sketch = (): Sketch => ({ offset: next(30) - 10, counts: Array.from({ length: next(9) }, () => next(5)) })
  CASES.push([`random pair ${i}`, sketch(), sketch()])
}

for (const dialect of DIALECTS) {
  t.test(`${dialect}: an upsert merges a stored sketch with a batch's as adding them bucket by bucket would`, async (t) => {
    const { db, prefix } = await openWriterStore(t, dialect, [])
    // a table of the test's own: its prefix, so that the test's cleanup drops it (the plugin prefixes only its own tables)
    const table = sql.table(`${prefix}sketch_merge_probe`)
    await sql`create table ${table} (id integer primary key, sketch_offset smallint not null, sketch bigint[] not null)`.execute(db)
    const literal = (s: Sketch) => sql`${`{${s.counts.join(',')}}`}::bigint[]`
    for (const [index, [, stored]] of CASES.entries()) {
      await sql`insert into ${table} values (${index}, ${stored.offset}, ${literal(stored)})`.execute(db)
    }
    for (const [index, [, , added]] of CASES.entries()) {
      await sql`insert into ${table} as h values (${index}, ${added.offset}, ${literal(added)})
        on conflict (id) do update set ${mergeSketchSql()}`.execute(db)
    }
    const { rows } = await sql<{ id: number, sketch_offset: number, sketch: string[] | number[] }>`select id, sketch_offset, sketch from ${table} order by id`.execute(db)
    t.equal(rows.length, CASES.length)
    for (const row of rows) {
      const [name, stored, added] = CASES[row.id]!
      const expected = merged(stored, added)
      t.same({ offset: row.sketch_offset, counts: row.sketch.map(Number) }, expected, name)
    }
  })
}
