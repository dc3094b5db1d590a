import t from 'tap'
import { sql } from 'kysely'
import { DIALECTS, openWriterStore } from './helpers.js'

// Every batch updates the current hour's row of each of its endpoints: on full pages none of those updates
// is HOT and the tables fill with dead rows (migration 0022 says the figures), so these keep room on each page.
const UPDATED_EVERY_BATCH = ['endpoint_hour', 'version_hour', 'request_hour', 'version_total_hour']

for (const dialect of DIALECTS) {
  t.test(`${dialect}: the hourly rollups leave room on their pages for the updates every batch makes; append-only tables do not`, async (t) => {
    const { db, prefix } = await openWriterStore(t, dialect, [])
    const { rows } = await sql<{ relname: string, reloptions: string[] | null }>`select relname, reloptions from pg_class
      where relkind in ('r', 'p') and relname = any(${[...UPDATED_EVERY_BATCH, 'endpoint_day', 'request'].map((name) => prefix + name)})`.execute(db)
    const options = new Map(rows.map((row) => [row.relname.slice(prefix.length), row.reloptions ?? []]))
    for (const table of UPDATED_EVERY_BATCH) t.same(options.get(table), ['fillfactor=70'], table)
    t.same(options.get('endpoint_day'), [], 'endpoint_day: updated once an hour by the fold, kept dense')
    t.same(options.get('request'), [], 'the raw requests: only inserted')
  })
}
