import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { Database } from '../db/database.js'

/**
 * `and <column> in (the project's endpoints)`: what keeps a view to one project; nothing for every project.
 * The views' rollups and raw rows are keyed by endpoint, so one subquery filters them all.
 */
export function inProject (projectId: number | undefined, column: RawBuilder<unknown> = sql.ref('endpoint_id')): RawBuilder<unknown> {
  return projectId === undefined ? sql`` : sql`and ${column} in (select id from ${sql.table('endpoint')} where project_id = ${projectId})`
}

/** A project as the picker and the settings list it. */
export interface ProjectSummary {
  id: number
  name: string
  createdAt: Date
  endpoints: number
  lastRequested: Date | null
}

/** An ingest token as admins see it: never the token, its last characters. */
export interface ProjectTokenSummary {
  id: number
  projectId: number
  hint: string
  createdAt: Date
  lastUsedAt: Date | null
  revokedAt: Date | null
}

export async function listProjects (db: Kysely<Database>): Promise<ProjectSummary[]> {
  const { rows } = await sql<{ id: number, name: string, created_at: Date, endpoints: number, last_requested: Date | null }>`
    select p.id, p.name, p.created_at, count(e.id)::int as endpoints, max(e.last_requested) as last_requested
    from ${sql.table('project')} p left join ${sql.table('endpoint')} e on e.project_id = p.id
    group by p.id order by p.name`.execute(db)
  return rows.map((row) => ({ id: row.id, name: row.name, createdAt: row.created_at, endpoints: row.endpoints, lastRequested: row.last_requested }))
}

export async function listProjectTokens (db: Kysely<Database>): Promise<ProjectTokenSummary[]> {
  const rows = await db.selectFrom('project_token').select(['id', 'project_id', 'hint', 'created_at', 'last_used_at', 'revoked_at'])
    .orderBy('project_id').orderBy('id').execute()
  return rows.map((row) => ({ id: row.id, projectId: row.project_id, hint: row.hint, createdAt: row.created_at, lastUsedAt: row.last_used_at, revokedAt: row.revoked_at }))
}

/** A project's name by id; undefined when there is none. */
export async function projectName (db: Kysely<Database>, id: number): Promise<string | undefined> {
  return (await db.selectFrom('project').select('name').where('id', '=', id).executeTakeFirst())?.name
}

/** A new project; undefined when the name is taken. */
export async function createProject (db: Kysely<Database>, name: string): Promise<number | undefined> {
  const row = await db.insertInto('project').values({ name }).onConflict((oc) => oc.column('name').doNothing()).returning('id').executeTakeFirst()
  return row?.id
}

/**
 * The id of the project of this name, made if it is new: what a test build or a custom graph names. A name
 * another process makes at the same moment is found by the second statement.
 */
export async function ensureProject (db: Kysely<Database>, name: string): Promise<number> {
  return await createProject(db, name) ??
    (await db.selectFrom('project').select('id').where('name', '=', name).executeTakeFirstOrThrow()).id
}

/** Stores a token's hash for a project; undefined when there is no such project. */
export async function addProjectToken (db: Kysely<Database>, projectId: number, hash: string, hint: string): Promise<number | undefined> {
  const { rows: [row] } = await sql<{ id: number }>`insert into ${sql.table('project_token')} (project_id, token_hash, hint)
    select id, ${hash}, ${hint} from ${sql.table('project')} where id = ${projectId} returning id`.execute(db)
  return row?.id
}

/** Revokes a token of a project (once); false when it has no such token not revoked yet. */
export async function revokeProjectToken (db: Kysely<Database>, projectId: number, tokenId: number): Promise<boolean> {
  const result = await db.updateTable('project_token').set({ revoked_at: new Date() })
    .where('id', '=', tokenId).where('project_id', '=', projectId).where('revoked_at', 'is', null).executeTakeFirst()
  return Number(result.numUpdatedRows) === 1
}

/** The project of a token not revoked, by the token's hash; notes when it was last used. */
export async function projectOfTokenHash (db: Kysely<Database>, hash: string): Promise<string | undefined> {
  const { rows: [row] } = await sql<{ name: string }>`update ${sql.table('project_token')} t set last_used_at = now()
    from ${sql.table('project')} p where t.token_hash = ${hash} and t.revoked_at is null and p.id = t.project_id
    returning p.name`.execute(db)
  return row?.name
}
