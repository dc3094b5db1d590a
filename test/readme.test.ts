import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'

// Every TypeScript and JavaScript block of the README type-checks against the package's own sources, as a
// user would paste it. A block that does not create its app gets one declared (`app`), like the prose around it.
const root = new URL('..', import.meta.url).pathname
const readme = readFileSync(join(root, 'README.md'), 'utf8')

interface Snippet { line: number, lang: 'ts' | 'js', code: string }

export function snippets (markdown: string): Snippet[] {
  const found: Snippet[] = []
  const fence = /^```(ts|js)\n([\s\S]*?)^```$/gm
  for (let m = fence.exec(markdown); m; m = fence.exec(markdown)) {
    found.push({ line: markdown.slice(0, m.index).split('\n').length, lang: m[1] as 'ts' | 'js', code: m[2]! })
  }
  return found
}

const preamble = (snippet: Snippet): string => /\bconst app\b/.test(snippet.code)
  ? ''
  : snippet.lang === 'ts'
    ? "import type { FastifyInstance } from 'fastify'\nimport 'fastify-monitoring-dashboard'\ndeclare const app: FastifyInstance\n"
    : ''

const found = snippets(readme)

t.test('the README has code blocks to check', async (t) => {
  t.ok(found.filter((s) => s.lang === 'ts').length >= 3, 'at least the usage, level and query blocks')
})

t.test('every README code block type-checks', async (t) => {
  const files = new Map(found.map((s) => [join(root, `readme-snippet-line${s.line}.${s.lang === 'ts' ? 'ts' : 'mjs'}`), preamble(s) + s.code]))
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    allowJs: true,
    checkJs: true,
    types: ['node'],
    // the package as users import it, from its sources
    paths: { 'fastify-monitoring-dashboard': [join(root, 'lib/index.ts')] }
  }
  const host = ts.createCompilerHost(options)
  const { fileExists, readFile, getSourceFile } = host
  host.fileExists = (name) => files.has(name) || fileExists.call(host, name)
  host.readFile = (name) => files.get(name) ?? readFile.call(host, name)
  host.getSourceFile = (name, version, onError, create) => files.has(name)
    ? ts.createSourceFile(name, files.get(name)!, version, true)
    : getSourceFile.call(host, name, version, onError, create)
  const program = ts.createProgram([...files.keys()], options, host)
  const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file && files.has(d.file.fileName))
  for (const s of found) {
    const name = join(root, `readme-snippet-line${s.line}.${s.lang === 'ts' ? 'ts' : 'mjs'}`)
    const offset = preamble(s).split('\n').length - 1
    const errors = diagnostics.filter((d) => d.file!.fileName === name).map((d) => {
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0)
      return `README.md:${s.line + line - offset + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
    })
    t.same(errors, [], `the ${s.lang} block at README.md:${s.line} compiles`)
  }
})
