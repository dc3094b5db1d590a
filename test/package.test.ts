import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { withoutPreloads } from '../lib/storage/client.js'
import { tmpDir } from './helpers.js'

// The package as users get it: npm pack's tarball installed into a fresh app, imported by name.
const root = new URL('..', import.meta.url).pathname
const npm = (args: string[], cwd: string): string => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

t.test('the packed tarball installs into a fresh app, imports by name, type-checks and records', async (t) => {
  const packDir = tmpDir()
  // `npm test` builds first; packing without the prepack build keeps dist/ unchanged under the
  // other test files, whose writer threads run the compiled build
  if (!existsSync(join(root, 'dist/index.js'))) npm(['run', 'build'], root)
  npm(['pack', '--ignore-scripts', '--pack-destination', packDir, '--silent'], root)
  const tarball = readdirSync(packDir).find((f) => f.endsWith('.tgz'))!
  const files = execFileSync('tar', ['-tzf', join(packDir, tarball)], { encoding: 'utf8' }).split('\n')
  t.ok(files.includes('package/dist/index.js') && files.includes('package/dist/index.d.ts'), 'compiled JS and types are packed')
  t.ok(files.includes('package/dist/writer/worker.js'), 'the writer thread is packed')
  t.notOk(files.some((f) => f.startsWith('package/lib/') || f.startsWith('package/test/')), 'sources and tests are not')
  // the seeding the tests, the benches and the demo use is built beside the plugin but not shipped with it
  t.ok(existsSync(join(root, 'dist/db/seed.js')), 'the build has the seeding module')
  t.notOk(files.some((f) => f.startsWith('package/dist/db/seed.')), 'the package has not')
  t.ok(files.includes('package/LICENSE'), 'the licence package.json names is packed')
  t.same(files.filter((f) => f.endsWith('.map')), [], 'no source maps (they would point at the unshipped lib/*.ts)')
  const packed = JSON.parse(execFileSync('tar', ['-xzOf', join(packDir, tarball), 'package/package.json'], { encoding: 'utf8' })) as {
    license: string, repository?: { url?: string }, peerDependencies?: Record<string, string>
  }
  t.equal(packed.license, 'MIT')
  t.match(packed.repository?.url, /^git\+https:\/\//, 'the repository is named')
  t.equal(packed.peerDependencies?.fastify, '^5.0.0', 'fastify is a peer dependency')

  // a Fastify 4 app is refused at install rather than failing at register
  const old = tmpDir()
  writeFileSync(join(old, 'package.json'), JSON.stringify({ name: 'old-consumer', private: true, dependencies: { fastify: '^4.0.0' } }))
  const refused = spawnSync('npm', ['install', '--dry-run', '--prefer-offline', '--no-audit', '--no-fund', join(packDir, tarball)], { cwd: old, encoding: 'utf8' })
  t.not(refused.status, 0, 'npm refuses the install')
  t.match(refused.stderr, /ERESOLVE[\s\S]*peer fastify@"\^5\.0\.0"/, 'because of the fastify peer range')

  const app = tmpDir()
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--silent', join(packDir, tarball), 'fastify@5', '@types/node@20'], app)
  writeFileSync(join(app, 'app.ts'), `
import Fastify from 'fastify'
import monitor, { type MonitorOptions } from 'fastify-monitoring-dashboard'

const options: MonitorOptions = { dataDir: './data', appVersion: '1.4.2', groupBy: (request) => request.headers['x-user'] as string, defaultMonitorLevel: 1 }
const app = Fastify()
await app.register(monitor, options)
app.get('/hello/:name', async () => 'hi')
await app.ready()
await app.monitor.ready
await app.inject({ url: '/hello/ada', headers: { 'x-user': 'u1' } })
await app.monitor.flush()
const rows = await app.monitor.db.selectFrom('request').select(['status_code', 'group_by']).execute()
console.log(JSON.stringify(rows))
await app.close()
`)
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, types: ['node'], outDir: 'out' }
  }))
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', app], { encoding: 'utf8' })
  t.pass('a strict TypeScript consumer compiles against the published types')
  // run as under a TypeScript loader or an APM agent: preloads, in the arguments and in NODE_OPTIONS, that say which thread they run in
  for (const from of ['argv', 'env']) writeFileSync(join(app, `preload-${from}.mjs`), `import { threadId } from 'node:worker_threads'\nprocess.stderr.write('${from} preload in thread ' + threadId + '\\n')\n`)
  const run = spawnSync(process.execPath, ['--dns-result-order=ipv4first', '--import', './preload-argv.mjs', join(app, 'out/app.js')], { cwd: app, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '--import=./preload-env.mjs' } })
  t.equal(run.status, 0, run.stderr)
  t.same(JSON.parse(run.stdout.trim()), [{ status_code: 200, group_by: 'u1' }], 'the installed package records a request')
  t.same(run.stderr.match(/\w+ preload in thread \d+/g)?.sort(), ['argv preload in thread 0', 'env preload in thread 0'], 'the host\'s preloads run in its main thread only, not again in the writer\'s')

  // the command line (the test monitor's `test` command) and the preload it puts into test processes
  const help = spawnSync(join(app, 'node_modules/.bin/fastify-monitoring-dashboard'), ['test', '--help'], { cwd: app, encoding: 'utf8' })
  t.equal(help.status, 0, help.stderr)
  t.match(help.stdout, /Usage: fastify-monitoring-dashboard test/, 'npx fastify-monitoring-dashboard runs')
  const preload = spawnSync(process.execPath, ['--import', 'fastify-monitoring-dashboard/test-monitor', '-e', 'console.log(typeof globalThis[Symbol.for("fastify-monitoring-dashboard.test-tracker")])'], { cwd: app, encoding: 'utf8' })
  t.equal(preload.stdout.trim(), 'object', 'the test monitor preloads by its package path')
})

t.test('the writer thread takes the host\'s Node options less its preloads, in each way they are written', async (t) => {
  t.same(withoutPreloads(['--import=file:///loader.mjs', '--enable-source-maps', '--import', 'tsx', '--dns-result-order=ipv4first', '-r', 'dd-trace/init',
    '--require=./apm.cjs', '--loader', 'ts-node/esm', '--experimental-loader=x.mjs', '--conditions=development']),
  ['--enable-source-maps', '--dns-result-order=ipv4first', '--conditions=development'])
  t.same(withoutPreloads([]), [])
})
