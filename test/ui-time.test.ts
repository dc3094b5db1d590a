import t from 'tap'
import { localDayRange, startOfToday, zoneChoices } from '../ui/src/lib/time.js'

// The dashboard's custom range (issue #15.1): whole local days in the chosen zone, the "To" day included.
t.test('a custom range covers its From and To days in the chosen zone', async (t) => {
  t.same(localDayRange('2026-11-29', '2026-11-30', 'UTC'), { from: '2026-11-29T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z' }, 'the 30th included')
  t.same(localDayRange('2026-11-29', '2026-11-30', 'Asia/Kolkata'), { from: '2026-11-28T18:30:00.000Z', to: '2026-11-30T18:30:00.000Z' }, 'cut at local midnight (+05:30), not UTC midnight')
  t.same(localDayRange('2026-11-30', '2026-11-30', 'America/Los_Angeles'), { from: '2026-11-30T08:00:00.000Z', to: '2026-12-01T08:00:00.000Z' }, 'one day')
  // 8 March 2026: New York springs forward, a 23-hour day
  t.same(localDayRange('2026-03-08', '2026-03-08', 'America/New_York'), { from: '2026-03-08T05:00:00.000Z', to: '2026-03-09T04:00:00.000Z' }, 'a DST day is 23 hours')
  t.same(localDayRange('2026-12-31', '2026-12-31', 'UTC').to, '2027-01-01T00:00:00.000Z', 'the year turns')
})

t.test('today starts at local midnight', async (t) => {
  const now = Date.parse('2026-11-30T02:00:00Z')
  t.equal(new Date(startOfToday(now, 'UTC')).toISOString(), '2026-11-30T00:00:00.000Z')
  t.equal(new Date(startOfToday(now, 'America/New_York')).toISOString(), '2026-11-29T05:00:00.000Z', 'still the 29th in New York')
  t.equal(new Date(startOfToday(now, 'Asia/Kolkata')).toISOString(), '2026-11-29T18:30:00.000Z')
})

t.test('the zone select offers the current zone whatever its alias', async (t) => {
  // Chromium's list has Asia/Calcutta; a link (or the server) may say Asia/Kolkata
  const choices = zoneChoices('Asia/Kolkata', 'Europe/Paris', ['Asia/Calcutta', 'Europe/Paris', 'UTC'])
  t.ok(choices.includes('Asia/Kolkata'), 'the selected zone is an option, so the select is not blank')
  t.equal(new Set(choices).size, choices.length, 'no duplicates')
})
