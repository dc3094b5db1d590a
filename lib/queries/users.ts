import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'

export type Role = 'admin' | 'guest'

export interface StoredUser {
  id: number
  username: string
  role: Role
  passwordHash: string
}

export async function findUser (db: Kysely<Database>, username: string): Promise<StoredUser | undefined> {
  const row = await db.selectFrom('dashboard_user').select(['id', 'username', 'role', 'password_hash'])
    .where('username', '=', username).executeTakeFirst()
  return row === undefined ? undefined : { id: row.id, username: row.username, role: row.role, passwordHash: row.password_hash }
}

export async function findUserById (db: Kysely<Database>, id: number): Promise<StoredUser | undefined> {
  const row = await db.selectFrom('dashboard_user').select(['id', 'username', 'role', 'password_hash'])
    .where('id', '=', id).executeTakeFirst()
  return row === undefined ? undefined : { id: row.id, username: row.username, role: row.role, passwordHash: row.password_hash }
}

export async function listUsers (db: Kysely<Database>): Promise<Array<{ username: string, role: Role, createdAt: Date }>> {
  const rows = await db.selectFrom('dashboard_user').select(['username', 'role', 'created_at']).orderBy('username').execute()
  return rows.map((row) => ({ username: row.username, role: row.role, createdAt: row.created_at }))
}

export async function countUsers (db: Kysely<Database>): Promise<number> {
  const { n } = await db.selectFrom('dashboard_user').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
  return Number(n)
}

/** Creates the user, or sets the password and role of an existing one. */
export async function upsertUser (db: Kysely<Database>, username: string, passwordHash: string, role: Role): Promise<void> {
  await db.insertInto('dashboard_user').values({ username, password_hash: passwordHash, role })
    .onConflict((oc) => oc.column('username').doUpdateSet({ password_hash: passwordHash, role })).execute()
}

/** Creates the user unless the name is taken; true when created. */
export async function createUser (db: Kysely<Database>, username: string, passwordHash: string, role: Role): Promise<boolean> {
  const row = await db.insertInto('dashboard_user').values({ username, password_hash: passwordHash, role })
    .onConflict((oc) => oc.column('username').doNothing()).returning('id').executeTakeFirst()
  return row !== undefined
}

export async function setPassword (db: Kysely<Database>, username: string, passwordHash: string): Promise<boolean> {
  const result = await db.updateTable('dashboard_user').set({ password_hash: passwordHash }).where('username', '=', username).executeTakeFirst()
  return result.numUpdatedRows > 0n
}

/** Deletes a user, refusing to remove the last admin (one statement: the read side has no transactions). */
export async function deleteUser (db: Kysely<Database>, username: string): Promise<'deleted' | 'missing' | 'last-admin'> {
  const { rows } = await sql<{ id: number }>`delete from ${sql.table('dashboard_user')} as u
    where u.username = ${username}
      and (u.role <> 'admin' or (select count(*) from ${sql.table('dashboard_user')} where role = 'admin') > 1)
    returning u.id`.execute(db)
  if (rows.length > 0) return 'deleted'
  return (await findUser(db, username)) === undefined ? 'missing' : 'last-admin'
}
