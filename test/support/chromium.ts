import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { pathToFileURL } from 'node:url'

// Debian's Chromium, headless, as a subprocess: a page's DOM once it has loaded (--dump-dom), a
// screenshot (--screenshot), and what went wrong loading it. For that last one the log on stderr
// (--enable-logging) is not enough: Chromium 156 writes a page's console messages there, every
// level as INFO:CONSOLE, among its own dbus and GPU complaints, but never a resource that failed
// to load (a missing image says nothing). So the page is loaded once more under the DevTools
// protocol over --remote-debugging-pipe, whose events say all of it: uncaught exceptions, console
// errors, failed and blocked loads.

/** The browser the tests drive (`apt-get install chromium`). */
export const CHROMIUM = '/usr/bin/chromium'
const TIMEOUT_MS = 60_000
/** Headless as root (no sandbox), no GPU, and none of Chromium's own network traffic. */
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking']
const STDERR_TAIL = 20

const alive = (group: number) => {
  try {
    process.kill(-group, 0)
    return true
  } catch {
    return false
  }
}

/** Kills Chromium's process group, after graceMs for helpers that outlive an exited browser briefly. */
async function endGroup(group: number, graceMs: number): Promise<void> {
  for (let waited = 0; waited < graceMs && alive(group); waited += 50) await new Promise((resolve) => setTimeout(resolve, 50))
  if (alive(group)) process.kill(-group, 'SIGKILL')
}

/** Runs Chromium with a throwaway profile until it exits (killed with its children after 60 s); its stdout. */
async function runChromium(
  what: string,
  args: string[],
  drive?: (toChromium: Writable, fromChromium: Readable) => Promise<void>,
): Promise<string> {
  const profile = await mkdtemp(path.join(tmpdir(), 'gre-chromium-'))
  // Its own process group, so that a timeout ends the renderer and GPU processes too.
  const child = spawn(CHROMIUM, [...FLAGS, `--user-data-dir=${profile}`, ...args], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    detached: true,
  })
  // The DevTools pipe breaks when the browser dies; its exit says so, not an EPIPE thrown at large.
  for (const stream of child.stdio.slice(3)) stream?.on('error', () => undefined)
  let stdout = ''
  const stderr: string[] = []
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr.push(...chunk.split('\n').filter(Boolean))
    stderr.splice(0, stderr.length - STDERR_TAIL)
  })
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new Error(`${CHROMIUM} not found: apt-get install chromium`) : error),
    )
    child.on('close', (code) => resolve(code))
  })
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`chromium did not finish ${what} within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS)
  })
  try {
    // A browser that exits (or crashes) before the driving is done fails at once, not at the timeout.
    const early = () => exited.then(() => Promise.reject(new Error(`chromium exited before it was done ${what}`)))
    const driven = drive && Promise.race([drive(child.stdio[3] as Writable, child.stdio[4] as Readable), early()])
    const [, code] = await Promise.race([Promise.all([driven, exited]), timeout])
    if (code !== 0) throw new Error(`chromium failed ${what} (exit ${code}):\n${stderr.join('\n')}`)
    return stdout
  } finally {
    clearTimeout(timer)
    if (child.pid !== undefined) await endGroup(child.pid, child.exitCode === null ? 0 : 5000)
    await exited.catch(() => undefined)
    await rm(profile, { recursive: true, force: true })
  }
}

/** The page's DOM, serialized by Chromium after the page has loaded. */
export async function renderedDom(file: string): Promise<string> {
  const dom = await runChromium(`to load ${file}`, ['--dump-dom', pathToFileURL(file).href])
  assert.match(dom, /<html/i, `chromium printed no DOM for ${file}`)
  return dom
}

/** Saves a 1280×1600 PNG of the page at pngPath; returns pngPath. */
export async function screenshot(file: string, pngPath: string): Promise<string> {
  await runChromium(`to screenshot ${file}`, [`--screenshot=${pngPath}`, '--window-size=1280,1600', pathToFileURL(file).href])
  const png = await readFile(pngPath)
  assert.ok(png.subarray(0, 8).equals(Buffer.from('\x89PNG\r\n\x1a\n', 'latin1')), `${pngPath} is not a PNG`)
  return pngPath
}

type Message = {
  id?: number
  method?: string
  params?: Record<string, unknown>
  result?: Record<string, unknown>
  error?: unknown
  sessionId?: string
}

/** The DevTools protocol over --remote-debugging-pipe: JSON messages, each ended by a NUL byte. */
class Cdp {
  private sent = 0
  private readonly replies = new Map<number, (message: Message) => void>()
  private readonly listeners: ((message: Message) => void)[] = []
  private buffered = ''

  constructor(
    private readonly toChromium: Writable,
    fromChromium: Readable,
  ) {
    fromChromium.setEncoding('utf8').on('data', (chunk: string) => {
      this.buffered += chunk
      for (let end = this.buffered.indexOf('\0'); end >= 0; end = this.buffered.indexOf('\0')) {
        const message = JSON.parse(this.buffered.slice(0, end)) as Message
        this.buffered = this.buffered.slice(end + 1)
        if (message.id !== undefined) this.replies.get(message.id)?.(message)
        else for (const listener of this.listeners) listener(message)
      }
    })
  }

  /** Sends a command (to a page's session when given) and resolves with its result. */
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = ++this.sent
    return new Promise((resolve, reject) => {
      this.replies.set(id, (reply) =>
        reply.error ? reject(new Error(`${method}: ${JSON.stringify(reply.error)}`)) : resolve(reply.result ?? {}),
      )
      this.toChromium.write(`${JSON.stringify({ id, method, params, sessionId })}\0`)
    })
  }

  /** Calls listener with every event. */
  on(listener: (message: Message) => void): void {
    this.listeners.push(listener)
  }
}

type Json = Record<string, unknown>
const field = (value: unknown, key: string): unknown => (value && typeof value === 'object' ? (value as Json)[key] : undefined)
const PROBLEM_LEVELS = new Set(['error', 'warning', 'assert'])

/** What an event of the page says went wrong, or null when it says nothing did. */
function problemOf({ method, params }: Message, urls: Map<unknown, unknown>): string | null {
  switch (method) {
    case 'Runtime.exceptionThrown': {
      const details = field(params, 'exceptionDetails')
      const description = field(field(details, 'exception'), 'description') ?? field(details, 'text')
      return `uncaught exception: ${description} (${field(details, 'url')}:${Number(field(details, 'lineNumber')) + 1})`
    }
    case 'Runtime.consoleAPICalled': {
      if (!PROBLEM_LEVELS.has(String(field(params, 'type')))) return null
      const args = (field(params, 'args') as unknown[] | undefined) ?? []
      return `console.${field(params, 'type')}: ${args.map((arg) => field(arg, 'value') ?? field(arg, 'description')).join(' ')}`
    }
    case 'Log.entryAdded': {
      const entry = field(params, 'entry')
      if (!PROBLEM_LEVELS.has(String(field(entry, 'level')))) return null
      return `${field(entry, 'source')} ${field(entry, 'level')}: ${field(entry, 'text')} (${field(entry, 'url')})`
    }
    case 'Network.loadingFailed':
      if (field(params, 'canceled') === true) return null
      return `failed to load ${urls.get(field(params, 'requestId'))}: ${field(params, 'errorText') || field(params, 'blockedReason')}`
    case 'Inspector.targetCrashed':
      return 'the page crashed'
    default:
      return null
  }
}

/**
 * What went wrong loading the page, one line each: an uncaught exception, a console error or
 * warning, a failed or blocked load (a missing image, a CSP violation); [] when nothing did.
 */
export async function pageProblems(file: string): Promise<string[]> {
  const problems: string[] = []
  await runChromium(`to load ${file} under DevTools`, ['--remote-debugging-pipe', 'about:blank'], async (toChromium, fromChromium) => {
    const cdp = new Cdp(toChromium, fromChromium)
    const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' })
    const sessionId = String((await cdp.send('Target.attachToTarget', { targetId, flatten: true })).sessionId)
    const urls = new Map<unknown, unknown>()
    let loaded: () => void = () => undefined
    const load = new Promise<void>((resolve) => (loaded = resolve))
    cdp.on((event) => {
      if (event.sessionId !== sessionId) return
      if (event.method === 'Network.requestWillBeSent')
        urls.set(field(event.params, 'requestId'), field(field(event.params, 'request'), 'url'))
      if (event.method === 'Page.loadEventFired') loaded()
      const problem = problemOf(event, urls)
      if (problem) problems.push(problem)
    })
    for (const domain of ['Runtime', 'Log', 'Network', 'Page', 'Inspector']) await cdp.send(`${domain}.enable`, {}, sessionId)
    const navigated = await cdp.send('Page.navigate', { url: pathToFileURL(file).href }, sessionId)
    if (navigated.errorText) problems.push(`could not open ${file}: ${navigated.errorText}`)
    await load
    // A round trip to the page: whatever it reported before answering has been heard.
    await cdp.send('Runtime.evaluate', { expression: '0' }, sessionId)
    // Its reply may be lost as the pipe closes: runChromium waits for the exit instead.
    void cdp.send('Browser.close').catch(() => undefined)
  })
  return problems
}

/** What a history page shows, as checkHistoryPage read it in Chromium. */
export interface HistoryPageCheck {
  /** Rows of its table of runs. */
  runs: number
  /** f1 points per chart and task, keyed "suite/split/task". */
  points: Map<string, number>
  /** Where its screenshot is. */
  screenshot: string
  /** Its DOM as Chromium rendered it. */
  dom: string
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', nbsp: '\u00a0', '#39': "'" }
const unescapeHtml = (text: string) => text.replace(/&(amp|lt|gt|quot|nbsp|#39);/g, (_, name: string) => ENTITIES[name]!)
const attribute = (tag: string, name: string) => {
  const value = new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1]
  return value === undefined ? undefined : unescapeHtml(value)
}

/** The runs in a history page's table and its f1 points per chart and task; asserts each point is of a listed run, one per task. */
export function historyPageFacts(dom: string): { runs: number; points: Map<string, number> } {
  const tableRuns = [...dom.matchAll(/<tr\b[^>]*>/g)].map((m) => attribute(m[0], 'data-run')).filter((run) => run !== undefined)
  const points = new Map<string, number>()
  for (const [, open, body] of dom.matchAll(/<section\b([^>]*\bclass="chart"[^>]*)>([\s\S]*?)<\/section>/g)) {
    const chart = `${attribute(open!, 'data-suite')}/${attribute(open!, 'data-split')}`
    const seen = new Set<string>()
    for (const [circle] of body!.matchAll(/<circle\b[^>]*>/g)) {
      if (attribute(circle, 'data-score') !== 'f1') continue
      const [task, run] = [attribute(circle, 'data-task'), attribute(circle, 'data-run')]
      assert.ok(run !== undefined && tableRuns.includes(run), `chart ${chart}: a point of a run the table does not list: ${circle}`)
      assert.ok(!seen.has(`${task}\0${run}`), `chart ${chart}: two f1 points of ${task} for run ${run}`)
      seen.add(`${task}\0${run}`)
      points.set(`${chart}/${task}`, (points.get(`${chart}/${task}`) ?? 0) + 1)
    }
  }
  return { runs: tableRuns.length, points }
}

/**
 * Loads a history page (index.html) in Chromium: asserts it loaded without a problem, reads its
 * runs and f1 points, and saves a screenshot at pngPath (by default in a new folder of the temp dir).
 */
export async function checkHistoryPage(file: string, pngPath?: string): Promise<HistoryPageCheck> {
  const png = pngPath ?? path.join(await mkdtemp(path.join(tmpdir(), 'gre-history-')), 'index.png')
  const [problems, dom] = await Promise.all([pageProblems(file), renderedDom(file), screenshot(file, png)])
  assert.deepEqual(problems, [], `${file} loaded with problems:\n${problems.join('\n')}`)
  return { ...historyPageFacts(dom), screenshot: png, dom }
}
