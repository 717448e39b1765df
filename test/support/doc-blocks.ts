// The shell blocks of a Markdown document, with the doc-test markers that precede them, so that
// every command the docs tell a user to type is either run by the tests or says why it cannot be.
//
// A marker is an HTML comment on its own line right before the opening fence (blank lines and
// other markers may sit between):
//   <!-- doc-test: skip: REASON -->     not run here; REASON must say why
//   <!-- doc-test: expect-exit N -->    the block must end with exit code N (default 0)
//   <!-- doc-test: continue -->         runs in the same bash as the block before it (its variables)

/** Fence languages whose blocks are commands a user types. */
export const SHELL_LANGUAGES = ['sh', 'bash', 'console'] as const

export interface DocBlock {
  /** 1-based line of the opening fence. */
  line: number
  lang: string
  /** The nearest heading above the block. */
  section: string
  /** The commands, indentation of the fence removed (console blocks: the `$ ` lines only). */
  script: string
  skip?: string
  expectExit: number
  continues: boolean
  /** Marker mistakes (an empty skip reason, an unknown directive): the test reports them. */
  problems: string[]
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/
const MARKER = /^\s*<!--\s*doc-test:\s*(.*?)\s*-->\s*$/
const HEADING = /^#{1,6}\s+(.*)$/

interface PendingMarkers {
  skip?: string
  expectExit: number
  continues: boolean
  problems: string[]
}

const noMarkers = (): PendingMarkers => ({ expectExit: 0, continues: false, problems: [] })

/** Applies one marker's text (what follows "doc-test:") to the markers of the next block. */
function applyMarker(markers: PendingMarkers, text: string): void {
  const skip = /^skip\s*:?\s*(.*)$/.exec(text)
  const exit = /^expect-exit\s+(\d{1,3})$/.exec(text)
  if (skip) {
    if (!skip[1]) markers.problems.push('a skip marker needs a reason: <!-- doc-test: skip: why it cannot run here -->')
    markers.skip = skip[1]
  } else if (exit) markers.expectExit = Number(exit[1])
  else if (text === 'continue') markers.continues = true
  else markers.problems.push(`unknown doc-test marker "${text}" (skip: REASON, expect-exit N, continue)`)
}

/** Commands of a console block: `$ ` lines and their backslash continuations, not the output. */
function consoleCommands(lines: string[]): string {
  const out: string[] = []
  let continuing = false
  for (const line of lines) {
    if (continuing || line.startsWith('$ ')) {
      out.push(continuing ? line : line.slice(2))
      continuing = line.endsWith('\\')
    }
  }
  return out.join('\n')
}

/** Every fenced block of a shell language in `markdown`, in order, with its markers. */
export function parseDocBlocks(markdown: string): DocBlock[] {
  const lines = markdown.split('\n')
  const blocks: DocBlock[] = []
  let markers = noMarkers()
  let section = ''
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const marker = MARKER.exec(line)
    if (marker) {
      applyMarker(markers, marker[1]!)
      continue
    }
    const fence = FENCE.exec(line)
    if (!fence) {
      const heading = HEADING.exec(line)
      if (heading) section = heading[1]!.trim()
      // Markers belong to the very next block: any text in between drops them.
      if (line.trim() !== '') markers = noMarkers()
      continue
    }
    const [, indent = '', ticks = '', lang = ''] = fence
    const body: string[] = []
    let j = i + 1
    for (; j < lines.length; j++) {
      const inner = lines[j]!
      if (inner.trim().startsWith(ticks[0]!.repeat(ticks.length)) && inner.trim().replace(/[`~]/g, '') === '') break
      body.push(inner.startsWith(indent) ? inner.slice(indent.length) : inner.trimStart())
    }
    if ((SHELL_LANGUAGES as readonly string[]).includes(lang)) {
      const script = lang === 'console' ? consoleCommands(body) : body.join('\n')
      blocks.push({
        line: i + 1,
        lang,
        section,
        script,
        skip: markers.skip,
        expectExit: markers.expectExit,
        continues: markers.continues,
        problems: markers.problems,
      })
    }
    markers = noMarkers()
    i = j
  }
  return blocks
}

export interface BlockGroup {
  /** The blocks that run in one bash, in order: the first, then those marked continue. */
  blocks: DocBlock[]
  /** "DOC:LINE" of each block, joined with "+". */
  name: string
}

/** Groups blocks for running: each block with the `continue` blocks that follow it. */
export function groupBlocks(doc: string, blocks: readonly DocBlock[]): BlockGroup[] {
  const groups: BlockGroup[] = []
  for (const block of blocks) {
    const last = groups.at(-1)
    if (block.continues && last) last.blocks.push(block)
    else {
      if (block.continues) block.problems.push('continue on the first block of the document: there is nothing to continue')
      groups.push({ blocks: [block], name: '' })
    }
  }
  for (const g of groups) g.name = `${doc}:${g.blocks.map((b) => b.line).join('+')}`
  return groups
}

/**
 * One bash script for a group. Each block that must end with a non-zero code runs in a subshell
 * whose code is checked, so that `set -e` does not end the group there; the others run as they
 * are, in the same shell, so that the variables they set reach the blocks after them.
 */
export function groupScript(group: BlockGroup): string {
  return group.blocks
    .map((b) => {
      const where = `line ${b.line}`
      if (b.expectExit === 0) return `# ${where}\n${b.script}\n`
      return [
        `# ${where} (expected exit ${b.expectExit})`,
        'set +e',
        `(\nset -e\n${b.script}\n)`,
        `__code=$?`,
        'set -e',
        `[ "$__code" -eq ${b.expectExit} ] || { echo "doc-test: the block at ${where} ended with exit $__code, expected ${b.expectExit}" >&2; exit 1; }`,
        '',
      ].join('\n')
    })
    .join('\n')
}
