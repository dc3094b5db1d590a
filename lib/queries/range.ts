import { sql, type RawBuilder } from 'kysely'

/** A time window the client asked for, and the IANA time zone its days and hours are counted in. */
export interface TimeRange {
  from: Date
  to: Date
  tz: string
}

/** SQL: the start of the local day (in `tz`) that a timestamptz falls in, as a timestamptz. */
export function localDayStart (at: RawBuilder<unknown>, tz: string): RawBuilder<Date> {
  return sql<Date>`(date_trunc('day', ${at} at time zone ${tz}) at time zone ${tz})`
}

/** SQL: the local calendar date (in `tz`) of a timestamptz, as `YYYY-MM-DD` text. */
export function localDate (at: RawBuilder<unknown>, tz: string): RawBuilder<string> {
  return sql<string>`to_char(${at} at time zone ${tz}, 'YYYY-MM-DD')`
}

/** SQL: the local hour of day (0–23, in `tz`) of a timestamptz. */
export function localHour (at: RawBuilder<unknown>, tz: string): RawBuilder<number> {
  return sql<number>`extract(hour from ${at} at time zone ${tz})::int`
}

/** True for a time zone JavaScript knows (an IANA name such as Europe/Paris). */
export function isTimeZone (tz: string): boolean {
  try {
    // eslint-disable-next-line no-new
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return true
  } catch {
    return false
  }
}
