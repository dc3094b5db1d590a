import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { WorkTick } from '../lib/work-tick.js'

t.test('the tick runs only while there is work: armed by whoever adds some, again by itself while some is left', async (t) => {
  let work = 0
  let runs = 0
  const tick = new WorkTick(20, () => { runs++; if (work > 0) work-- }, () => work > 0)
  await sleep(80)
  t.equal(runs, 0, 'never armed: never runs')
  work = 3
  tick.arm()
  tick.arm()
  await sleep(10)
  t.equal(runs, 0, 'not before its interval')
  await sleep(200)
  t.equal(runs, 3, 'armed twice, one tick; it ran until the work was done (3 runs), then stopped')
  t.equal(work, 0)
  await sleep(80)
  t.equal(runs, 3, 'no work: no more runs')
  work = 1
  tick.arm()
  tick.close()
  await sleep(80)
  t.equal(runs, 3, 'closed: the armed run does not come')
  tick.arm()
  await sleep(80)
  t.equal(runs, 3, 'nor does one armed after close')
})

t.test('a run that throws is retried while work is left', async (t) => {
  let runs = 0
  const tick = new WorkTick(10, async () => { runs++; if (runs < 3) throw new Error('database down') }, () => runs < 3)
  tick.arm()
  await sleep(150)
  t.equal(runs, 3)
  tick.close()
})
