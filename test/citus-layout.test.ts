import t from 'tap'
import { readFileSync } from 'node:fs'
import { CITUS_LAYOUT, citusSetupSql } from '../lib/db/citus.js'
import { createMigrations } from '../lib/db/migrations/index.js'
import { DIALECTS, backend, migratedTo, withPostgres } from './helpers.js'

// #19: past one PostgreSQL server the path is Citus. Its documented rules, checked against the schema the
// migrations make (so a future migration that breaks them fails here): every table has a place on the
// cluster; a distributed table's primary key and unique constraints include its distribution column;
// foreign keys point at reference tables. The README's set-up SQL is the layout's.
t.test('the migrated schema keeps to Citus\'s rules for the documented layout', { skip: !DIALECTS.includes('postgres') && 'needs the PostgreSQL server' }, async (t) => {
  const store = await backend('postgres')
  t.teardown(store.cleanup)
  // the latest migration, whichever it is
  const { close } = await migratedTo(store, Object.keys(createMigrations(store.prefix)).at(-1)!)
  await close()
  const { tables, constraints } = await withPostgres(async (client) => ({
    tables: (await client.query<{ name: string }>(`select substr(relname, $2) as name from pg_class
      where relname like $1 and relkind in ('r', 'p') and not relispartition and relname not like '%migration%' order by 1`,
    [`${store.prefix.replace(/_/g, '\\_')}%`, store.prefix.length + 1])).rows.map((r) => r.name),
    constraints: (await client.query<{ table: string, type: string, columns: string[], references: string | null }>(`
      select substr(r.relname, $2) as table, c.contype as type,
        array(select a.attname::text from unnest(c.conkey) k join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k) as columns,
        substr(f.relname, $2) as references
      from pg_constraint c join pg_class r on r.oid = c.conrelid left join pg_class f on f.oid = c.confrelid
      where r.relname like $1 and not r.relispartition and c.contype in ('p', 'u', 'f') and r.relname not like '%migration%'`,
    [`${store.prefix.replace(/_/g, '\\_')}%`, store.prefix.length + 1])).rows
  }))
  t.same(tables, Object.keys(CITUS_LAYOUT).sort(), 'every table has a place on the cluster, and every place a table')
  for (const c of constraints) {
    const placement = CITUS_LAYOUT[c.table]
    if (c.type === 'f') {
      t.equal(CITUS_LAYOUT[c.references!], 'reference', `${c.table} → ${c.references}: a foreign key points at a reference table`)
    } else if (placement !== undefined && placement !== 'reference') {
      t.ok(c.columns.includes(placement.distributeBy), `${c.table}: ${c.type === 'p' ? 'primary key' : 'unique'} (${c.columns.join(', ')}) includes ${placement.distributeBy}`)
    }
  }
  t.ok(constraints.some((c) => c.type === 'f'), 'the schema has foreign keys to check')

  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  t.ok(readme.includes(`\`\`\`sql\n${citusSetupSql('fmd_')}\n\`\`\``), 'the README gives the layout\'s set-up SQL')
  t.match(citusSetupSql('mon_'), /create_distributed_table\('mon_request_hour', 'endpoint_id', colocate_with => 'mon_request'\)/)
})
