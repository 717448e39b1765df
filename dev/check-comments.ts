// Part of `npm run lint`: a comment that names a file of the project names one that exists. Paths
// are read from comments of the code (TypeScript, JavaScript, bash, Python, make), and looked up
// from the project's root, from the commenting file's folder, and in the example eval repo. Not
// checked: a file of the real eval repo, written guardrails:app/tools/download_models.py; a path
// the same file also spells in its code (a file a test makes); a path with a placeholder (RUN_DIR/log).
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const EXAMPLE = 'examples/guardrails-mini'
/** A path as comments write it: folders and a file with a known extension, or a bare *.md. */
const PATH = /(?<![\w./~$-])((?:[\w.*-]+\/)+[\w.*-]+\.(?:ts|mjs|sh|py|md|json|ya?ml|mk)|[\w-]+\.md)\b/g

/** The comment text of a file, by its kind. */
function commentsOf(file: string, text: string): string[] {
  if (/\.(ts|m?js)$/.test(file)) {
    // TypeScript's own parser: a // or /* inside a string or a regex is not a comment.
    const comments = new Map<number, string>()
    const visit = (node: ts.Node) => {
      for (const range of [...(ts.getLeadingCommentRanges(text, node.pos) ?? []), ...(ts.getTrailingCommentRanges(text, node.end) ?? [])]) {
        comments.set(range.pos, text.slice(range.pos, range.end))
      }
      ts.forEachChild(node, visit)
    }
    visit(ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false))
    return [...comments.values()]
  }
  if (/\.(sh|py|mk)$|(^|\/)Makefile$/.test(file) || text.startsWith('#!')) return [...text.matchAll(/(?:^|\s)#[^\n]*/g)].map((m) => m[0])
  return []
}

/** Whether a named path exists where a reader would look. */
function found(name: string, file: string): boolean {
  const places = [ROOT, path.join(ROOT, path.dirname(file)), path.join(ROOT, EXAMPLE)]
  if (!name.includes('*')) return places.some((place) => existsSync(path.join(place, name)))
  const pattern = new RegExp(
    `^${name
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^/]*')}$`,
  )
  return places.some((place) => tracked.some((t) => pattern.test(path.relative(place, path.join(ROOT, t)))))
}

const tracked = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' })
  .split('\0')
  .filter(Boolean)

/** Each comment that names a missing file, as "file: name". */
export function missingNames(): string[] {
  const problems: string[] = []
  for (const file of tracked) {
    if (!/^(lib|scripts|bin|bench|test|dev|examples|\.ci)\//.test(file) && file !== 'Makefile' && file !== 'remote-eval.mk') continue
    if (!existsSync(path.join(ROOT, file)) || /\/hub-repos\//.test(file)) continue
    const text = readFileSync(path.join(ROOT, file), 'utf8')
    for (const comment of commentsOf(file, text)) {
      for (const match of comment.matchAll(PATH)) {
        const name = match[1]!
        const before = comment.slice(0, match.index)
        if (before.endsWith('guardrails:') || name.split('/').some((part) => /^[A-Z][A-Z_]+$/.test(part))) continue
        if (text.replace(comment, '').includes(name)) continue
        if (!found(name, file)) problems.push(`${file}: names ${name}, which is not in the project`)
      }
    }
  }
  return [...new Set(problems)]
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const problems = missingNames()
  for (const problem of problems) console.error(problem)
  if (problems.length) {
    console.error(`${problems.length} comment(s) name a file that does not exist: correct the name, or say what it is without a path.`)
    process.exitCode = 1
  }
}
