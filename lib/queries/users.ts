import { sql, type Kysely, type RawBuilder } from 'kysely'
import type { Database } from '../db/database.js'

export type Role = 'admin' | 'guest'

export interface StoredUser {
  id: number
  username: string
  role: Role
  passwordHash: string
  /** A session is valid only while it carries this generation (see migration 0006). */
  sessionGeneration: number
}

const USER_COLUMNS = ['id', 'username', 'role', 'password_hash', 'session_generation'] as const

function toStoredUser (row: { id: number, username: string, role: Role, password_hash: string, session_generation: number }): StoredUser {
  return { id: row.id, username: row.username, role: row.role, passwordHash: row.password_hash, sessionGeneration: row.session_generation }
}

export async function findUser (db: Kysely<Database>, username: string): Promise<StoredUser | undefined> {
  const row = await db.selectFrom('dashboard_user').select(USER_COLUMNS).where('username', '=', username).executeTakeFirst()
  return row === undefined ? undefined : toStoredUser(row)
}

export async function findUserById (db: Kysely<Database>, id: number): Promise<StoredUser | undefined> {
  const row = await db.selectFrom('dashboard_user').select(USER_COLUMNS).where('id', '=', id).executeTakeFirst()
  return row === undefined ? undefined : toStoredUser(row)
}

export async function listUsers (db: Kysely<Database>): Promise<Array<{ username: string, role: Role, createdAt: Date }>> {
  const rows = await db.selectFrom('dashboard_user').select(['username', 'role', 'created_at']).orderBy('username').execute()
  return rows.map((row) => ({ username: row.username, role: row.role, createdAt: row.created_at }))
}

export async function countUsers (db: Kysely<Database>): Promise<number> {
  const { n } = await db.selectFrom('dashboard_user').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
  return Number(n)
}

/** Creates the user, or sets the password and role of an existing one (ending its sessions). */
export async function upsertUser (db: Kysely<Database>, username: string, passwordHash: string, role: Role): Promise<void> {
  await db.insertInto('dashboard_user').values({ username, password_hash: passwordHash, role })
    .onConflict((oc) => oc.column('username').doUpdateSet({ password_hash: passwordHash, role, session_generation: sql`${sql.ref('dashboard_user.session_generation')} + 1` }))
    .execute()
}

/** Creates the user unless the name is taken; true when created. */
export async function createUser (db: Kysely<Database>, username: string, passwordHash: string, role: Role): Promise<boolean> {
  const row = await db.insertInto('dashboard_user').values({ username, password_hash: passwordHash, role })
    .onConflict((oc) => oc.column('username').doNothing()).returning('id').executeTakeFirst()
  return row !== undefined
}

/** Sets a password and ends the user's sessions; the new generation, or undefined for no such user. */
export async function setPassword (db: Kysely<Database>, username: string, passwordHash: string): Promise<number | undefined> {
  const row = await db.updateTable('dashboard_user')
    .set({ password_hash: passwordHash, session_generation: sql`session_generation + 1` })
    .where('username', '=', username).returning('session_generation').executeTakeFirst()
  return row?.session_generation
}

/** Ends every session of the user (logout). */
export async function endSessions (db: Kysely<Database>, userId: number): Promise<void> {
  await db.updateTable('dashboard_user').set({ session_generation: sql`session_generation + 1` }).where('id', '=', userId).execute()
}

/**
 * The admins, each row locked (`for update`) until the statement's transaction ends. A statement that
 * removes an admin counts them through this: under READ COMMITTED a concurrent statement doing the
 * same waits for the lock and then re-reads the rows, seeing the other's change, so two concurrent
 * deletes (or demotions) of the last two admins cannot both succeed. `materialized` keeps the CTE
 * (and its locks) from being inlined.
 */
function lockedAdmins (): RawBuilder<unknown> {
  return sql`admins as materialized (select id from ${sql.table('dashboard_user')} where role = 'admin' for update)`
}

/**
 * Deletes a user, refusing to remove the last admin, in one statement (the read side has no
 * transactions; see {@link lockedAdmins} for why it holds under concurrency).
 */
export async function deleteUser (db: Kysely<Database>, username: string): Promise<'deleted' | 'missing' | 'last-admin'> {
  const { rows } = await sql<{ id: number }>`with ${lockedAdmins()}
    delete from ${sql.table('dashboard_user')} as u
    where u.username = ${username}
      and (u.role <> 'admin' or (select count(*) from admins) > 1)
    returning u.id`.execute(db)
  if (rows.length > 0) return 'deleted'
  return (await findUser(db, username)) === undefined ? 'missing' : 'last-admin'
}

/** Changes a role (ending the user's sessions), refusing to demote the last admin; one statement, as {@link deleteUser}. */
export async function setRole (db: Kysely<Database>, username: string, role: Role): Promise<'changed' | 'missing' | 'last-admin'> {
  const { rows } = await sql<{ id: number }>`with ${lockedAdmins()}
    update ${sql.table('dashboard_user')} as u
    set role = ${role}, session_generation = u.session_generation + 1
    where u.username = ${username}
      and (${role} = 'admin' or u.role <> 'admin' or (select count(*) from admins) > 1)
    returning u.id`.execute(db)
  if (rows.length > 0) return 'changed'
  return (await findUser(db, username)) === undefined ? 'missing' : 'last-admin'
}
