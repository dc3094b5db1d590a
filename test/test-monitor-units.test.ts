import t from 'tap'
import { buildInfo } from '../lib/test-monitor/command.js'
import { tmpDir } from './helpers.js'

t.test('the build comes from the flags, then GitHub Actions or GitLab CI, then a local name', async (t) => {
  const noGit = tmpDir()
  t.same(buildInfo({}, { GITHUB_RUN_ID: '42', GITHUB_RUN_ATTEMPT: '2', GITHUB_SHA: 'abc', GITHUB_HEAD_REF: 'feature', GITHUB_REF_NAME: '7/merge' }, noGit),
    { build: '42-2', commit: 'abc', branch: 'feature' }, 'a pull request build names its head branch')
  t.same(buildInfo({}, { GITHUB_RUN_ID: '42', GITHUB_SHA: 'abc', GITHUB_HEAD_REF: '', GITHUB_REF_NAME: 'main' }, noGit),
    { build: '42-1', commit: 'abc', branch: 'main' }, 'a push build names its branch')
  t.same(buildInfo({}, { CI_PIPELINE_ID: '9001', CI_COMMIT_SHA: 'def', CI_COMMIT_REF_NAME: 'dev' }, noGit),
    { build: '9001', commit: 'def', branch: 'dev' }, 'GitLab CI')
  t.same(buildInfo({ build: 'b7', commit: 'c', branch: 'x' }, { GITHUB_RUN_ID: '42', GITHUB_SHA: 'abc', GITHUB_REF_NAME: 'main' }, noGit),
    { build: 'b7', commit: 'c', branch: 'x' }, 'flags win')
  const local = buildInfo({}, {}, noGit)
  t.match(local.build, /^local-\d{4}-\d\d-\d\dT/)
  t.same([local.commit, local.branch], [null, null], 'outside a git checkout and CI nothing is made up')
})
