import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import path from 'node:path'

// TEST DOUBLE for the Hugging Face Hub (huggingface.co is not reachable here). It speaks the subset
// of the Hub's HTTP API that the real Python clients (huggingface_hub 1.x, datasets 5.x) call for
// snapshot_download, model_info/dataset_info and load_dataset, pointed at with HF_ENDPOINT:
//   GET  /api/{models|datasets}/{repo}[/revision/{rev}]          repo info (sha, siblings; sizes with blobs=true)
//   GET  /api/{models|datasets}/{repo}/tree/{rev}[/{path}]       file tree (recursive or not)
//   POST /api/{models|datasets}/{repo}/paths-info/{rev}          entries for given paths
//   HEAD|GET /[datasets/]{repo}/resolve/{rev}/{file}               file, or 302 for LFS files
//   GET  http://127.0.0.2:{port}/lfs/{sha256}                       LFS bytes (the "CDN")
//   POST /api/validate-yaml                                      README front matter: always fine
//   POST /api/{models|datasets}/{repo}/preupload/{rev}           every file "regular" (no LFS uploads)
//   POST /api/{models|datasets}/{repo}/commit/{rev}              NDJSON commit of regular files: written
//                                                                into the repo directory (a new sha)
// LFS files redirect to a second loopback address because huggingface_hub follows same-host
// redirects on HEAD and would then miss X-Repo-Commit. Errors carry X-Error-Code, from which the
// client picks its exception (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError).
// Repos are directories: {root}/{models|datasets}/{org}/{name}/..., one commit ("main") each.

export interface RepoAccess {
  private?: boolean
  /** Gated: info and tree stay public, files need a token on the allow-list. */
  gated?: 'auto' | 'manual'
  allowed?: string[]
}

export interface HubRequest {
  method: string
  host: string
  path: string
  status: number
  authorization: string | null
  /** A file body was sent (GET of a plain file or of LFS bytes). */
  fileDownload: boolean
  /** The repo the request was about, when it named or served one. */
  repo: string | null
}

export interface HubServerOptions {
  root: string
  /** Tokens the server accepts ("hf_..."); any other token is rejected as invalid. */
  tokens?: string[]
  access?: Record<string, RepoAccess>
  /** Called before each request is answered; return true to make the server die right there. */
  dieWhen?: (method: string, path: string) => boolean
  /** File bodies sent at this many bytes a second (a slow link, for the progress lines). */
  bytesPerSecond?: number
}

interface RepoFile {
  path: string
  full: string
  size: number
  oid: string
  lfs?: { oid: string; size: number; pointerSize: number }
}

interface Repo {
  type: 'model' | 'dataset'
  id: string
  sha: string
  files: Map<string, RepoFile>
}

const LFS_PATTERN = /\.(safetensors|bin|parquet|arrow|pt|onnx)$/
const CDN_HOST = '127.0.0.2'

const gitBlobOid = (data: Buffer) => createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex')

function loadRepo(root: string, type: 'model' | 'dataset', id: string): Repo | null {
  const dir = path.join(root, `${type}s`, id)
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return null
  const files = new Map<string, RepoFile>()
  const walk = (rel: string) => {
    for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name
      if (entry.isDirectory()) walk(child)
      else {
        const full = path.join(dir, child)
        const data = readFileSync(full)
        if (LFS_PATTERN.test(child)) {
          const sha256 = createHash('sha256').update(data).digest('hex')
          const pointer = Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${data.length}\n`)
          files.set(child, {
            path: child,
            full,
            size: data.length,
            oid: gitBlobOid(pointer),
            lfs: { oid: sha256, size: data.length, pointerSize: pointer.length },
          })
        } else {
          files.set(child, { path: child, full, size: data.length, oid: gitBlobOid(data) })
        }
      }
    }
  }
  walk('')
  const commit = createHash('sha1').update(`${type}:${id}`)
  for (const rel of [...files.keys()].sort()) commit.update(`${rel}:${files.get(rel)!.oid}`)
  return { type, id, sha: commit.digest('hex'), files }
}

export class HubServer {
  readonly requests: HubRequest[] = []
  port = 0
  private servers: Server[] = []
  private sockets = new Set<Socket>()
  private readonly options: HubServerOptions

  constructor(options: HubServerOptions) {
    this.options = options
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Listens on 127.0.0.1 and 127.0.0.2 at one port (a fresh one, or the previous one on restart). */
  async start(): Promise<void> {
    for (const host of ['127.0.0.1', CDN_HOST]) {
      const server = createServer((req, res) => this.handle(req, res))
      server.on('connection', (socket) => {
        this.sockets.add(socket)
        socket.on('close', () => this.sockets.delete(socket))
      })
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(this.port, host, () => resolve())
      })
      if (!this.port) this.port = (server.address() as { port: number }).port
      this.servers.push(server)
    }
  }

  /** Stops at once, cutting every transfer in flight (what a crashed server does). */
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await Promise.all(this.servers.map((s) => new Promise((resolve) => s.close(resolve))))
    this.servers = []
  }

  /** Requests that sent a file body, optionally for one repo ("org/name"). */
  fileDownloads(repoId?: string): HubRequest[] {
    return this.requests.filter((r) => r.fileDownload && (!repoId || r.repo === repoId))
  }

  /** Forgets what it read of the repos (after a test changed one). */
  reload(): void {
    this.cache.clear()
  }

  private cache = new Map<string, Repo | null>()

  private repo(type: 'model' | 'dataset', id: string): Repo | null {
    const key = `${type}:${id}`
    if (!this.cache.has(key)) this.cache.set(key, loadRepo(this.options.root, type, id))
    return this.cache.get(key) ?? null
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x')
    const method = req.method ?? 'GET'
    const host = (req.headers.host ?? '').split(':')[0] ?? ''
    const record: HubRequest = {
      method,
      host,
      path: url.pathname + url.search,
      status: 0,
      authorization: req.headers.authorization ?? null,
      fileDownload: false,
      repo: null,
    }
    this.requests.push(record)
    if (this.options.dieWhen?.(method, url.pathname)) {
      void this.stop()
      return
    }
    const send = (status: number, body: string | Buffer | object, headers: Record<string, string> = {}, file = false) => {
      const data = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
      record.status = status
      record.fileDownload = file && method === 'GET' && status < 300
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(data.length), ...headers })
      const rate = this.options.bytesPerSecond
      if (!record.fileDownload || !rate) return void res.end(method === 'HEAD' ? undefined : data)
      // A slow link: a tenth of a second's worth at a time.
      const step = Math.max(1, Math.floor(rate / 10))
      const drip = (from: number) => {
        if (from >= data.length || res.destroyed) return void res.end()
        res.write(data.subarray(from, from + step))
        setTimeout(() => drip(from + step), 100)
      }
      drip(0)
    }
    const fail = (status: number, code: string | null, message: string, headers: Record<string, string> = {}) =>
      send(status, { error: message }, { 'X-Error-Message': message, ...(code ? { 'X-Error-Code': code } : {}), ...headers })

    let body = ''
    req.on('data', (chunk: Buffer) => (body += chunk.toString()))
    req.on('end', () => {
      const p = url.pathname
      let m: RegExpExecArray | null
      if ((m = /^\/lfs\/([0-9a-f]{64})$/.exec(p))) return this.serveLfs(m[1]!, record, send, fail)
      if (p === '/api/agent-harnesses') return send(200, { standardEnvVars: [], harnesses: {} })
      // A README.md in a commit is validated first; the double finds nothing to say.
      if (p === '/api/validate-yaml' && method === 'POST') return send(200, { errors: [], warnings: [] })
      if ((m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)(?:\/revision\/([^/]+))?$/.exec(p)) && method === 'GET') {
        const repo = this.access(req, m[1] === 'models' ? 'model' : 'dataset', m[2]!, m[3] ? decodeURIComponent(m[3]) : null, false, fail)
        if (repo) send(200, this.info(repo, /^(true|1)$/i.test(url.searchParams.get('blobs') ?? '')))
        return
      }
      if ((m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/tree\/([^/]+)(\/.*)?$/.exec(p)) && method === 'GET') {
        const repo = this.access(req, m[1] === 'models' ? 'model' : 'dataset', m[2]!, decodeURIComponent(m[3]!), false, fail)
        if (!repo) return
        const sub = decodeURIComponent(m[4] ?? '').replace(/^\/+|\/+$/g, '')
        if (sub && (repo.files.has(sub) || ![...repo.files.keys()].some((f) => f.startsWith(`${sub}/`)))) {
          return fail(404, 'EntryNotFound', `${sub} does not exist on "${m[3]}"`)
        }
        return send(200, this.tree(repo, sub, /^(true|1)$/i.test(url.searchParams.get('recursive') ?? '')))
      }
      if ((m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/(preupload|commit)\/([^/]+)$/.exec(p)) && method === 'POST') {
        const type = m[1] === 'models' ? 'model' : 'dataset'
        const repo = this.access(req, type, m[2]!, decodeURIComponent(m[4]!), true, fail)
        if (!repo) return
        if (!req.headers.authorization) return fail(401, null, 'Invalid credentials in Authorization header')
        if (m[3] === 'preupload') {
          const files = ((JSON.parse(body) as { files?: Array<{ path: string }> }).files ?? []).map((f) => ({
            path: f.path,
            uploadMode: 'regular',
            shouldIgnore: false,
          }))
          return send(200, { files, commitOid: repo.sha })
        }
        const lines = body
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { key: string; value: { path?: string; content?: string } })
        const unsupported = lines.find((l) => l.key !== 'header' && l.key !== 'file')
        if (unsupported) return fail(400, null, `the Hub double commits regular files only, not ${unsupported.key}`)
        const dir = path.join(this.options.root, `${type}s`, repo.id)
        for (const line of lines.filter((l) => l.key === 'file')) {
          const target = path.join(dir, line.value.path!)
          if (!target.startsWith(`${dir}/`)) return fail(400, null, `bad path ${line.value.path}`)
          mkdirSync(path.dirname(target), { recursive: true })
          writeFileSync(target, Buffer.from(line.value.content ?? '', 'base64'))
        }
        this.cache.delete(`${type}:${repo.id}`)
        const committed = this.repo(type, repo.id)!
        record.repo = repo.id
        return send(200, {
          commitUrl: `${this.endpoint}/${type === 'dataset' ? 'datasets/' : ''}${repo.id}/commit/${committed.sha}`,
          commitOid: committed.sha,
        })
      }
      if ((m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/paths-info\/([^/]+)$/.exec(p)) && method === 'POST') {
        const repo = this.access(req, m[1] === 'models' ? 'model' : 'dataset', m[2]!, decodeURIComponent(m[3]!), false, fail)
        if (!repo) return
        const paths = /json/.test(req.headers['content-type'] ?? '')
          ? ((JSON.parse(body) as { paths?: string[] }).paths ?? [])
          : new URLSearchParams(body).getAll('paths')
        const entries: object[] = []
        for (const raw of paths) {
          const q = raw.replace(/^\/+|\/+$/g, '')
          const file = repo.files.get(q)
          if (file) entries.push(this.entry(file))
          else if (q === '' || [...repo.files.keys()].some((f) => f.startsWith(`${q}/`))) entries.push(this.dirEntry(q))
        }
        return send(200, entries)
      }
      if ((m = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(p)) && (method === 'GET' || method === 'HEAD')) {
        const repo = this.access(req, m[1] ? 'dataset' : 'model', m[2]!, decodeURIComponent(m[3]!), true, fail)
        record.repo = m[2]!
        if (!repo) return
        const common = { 'X-Repo-Commit': repo.sha, 'Accept-Ranges': 'bytes' }
        const file = repo.files.get(decodeURIComponent(m[4]!))
        if (!file) return fail(404, 'EntryNotFound', 'Entry not found', common)
        if (file.lfs) {
          const location = `http://${CDN_HOST}:${this.port}/lfs/${file.lfs.oid}`
          return send(302, `Found. Redirecting to ${location}`, {
            ...common,
            Location: location,
            ETag: `"${file.lfs.oid}"`,
            'X-Linked-Etag': `"${file.lfs.oid}"`,
            'X-Linked-Size': String(file.size),
            'Content-Type': 'text/plain; charset=utf-8',
          })
        }
        return send(200, readFileSync(file.full), { ...common, ETag: `"${file.oid}"`, 'Content-Type': 'application/octet-stream' }, true)
      }
      fail(404, null, 'Not Found')
    })
  }

  /** The repo at that revision if the request may see it; otherwise answers as the Hub does and returns null. */
  private access(
    req: IncomingMessage,
    type: 'model' | 'dataset',
    id: string,
    revision: string | null,
    fileAccess: boolean,
    fail: (s: number, c: string | null, m: string) => void,
  ): Repo | null {
    const auth = req.headers.authorization ?? ''
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : null
    const rules = this.options.access?.[id] ?? {}
    if (token !== null && !(this.options.tokens ?? []).includes(token)) {
      fail(401, null, 'Invalid credentials in Authorization header')
      return null
    }
    const repo = this.repo(type, id)
    if (!repo) {
      fail(token ? 404 : 401, 'RepoNotFound', 'Repository not found')
      return null
    }
    if (rules.private && !token) {
      fail(401, 'RepoNotFound', 'Invalid username or password.')
      return null
    }
    if (rules.gated && fileAccess) {
      if (!token) {
        fail(
          401,
          'GatedRepo',
          `Access to ${type} ${id} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
        )
        return null
      }
      if (!(rules.allowed ?? []).includes(token)) {
        fail(
          403,
          'GatedRepo',
          `Access to ${type} ${id} is restricted and you are not in the authorized list. Visit ${this.endpoint}/${id} to ask for access.`,
        )
        return null
      }
    }
    if (revision !== null && revision !== 'main' && revision !== repo.sha) {
      fail(404, 'RevisionNotFound', `Invalid rev id: ${revision}`)
      return null
    }
    return repo
  }

  /** The repo's info; with blobs (files_metadata=True), each sibling's size as the Hub gives it. */
  private info(repo: Repo, blobs = false): object {
    const rules = this.options.access?.[repo.id] ?? {}
    return {
      _id: createHash('md5').update(repo.id).digest('hex').slice(0, 24),
      id: repo.id,
      ...(repo.type === 'model' ? { modelId: repo.id } : {}),
      author: repo.id.split('/')[0],
      sha: repo.sha,
      lastModified: '2026-01-01T00:00:00.000Z',
      createdAt: '2026-01-01T00:00:00.000Z',
      private: Boolean(rules.private),
      gated: rules.gated ?? false,
      disabled: false,
      downloads: 0,
      likes: 0,
      tags: [],
      siblings: [...repo.files.keys()].sort().map((rfilename) => {
        const file = repo.files.get(rfilename)!
        return blobs
          ? {
              rfilename,
              size: file.lfs?.size ?? file.size,
              blobId: file.oid,
              // A sibling's lfs names its hash sha256 (the tree's entries say oid).
              ...(file.lfs ? { lfs: { sha256: file.lfs.oid, size: file.lfs.size, pointerSize: file.lfs.pointerSize } } : {}),
            }
          : { rfilename }
      }),
    }
  }

  private entry(file: RepoFile): object {
    // No xetHash: the client then stays on plain HTTP (HEAD + GET), which this server speaks.
    return { type: 'file', oid: file.oid, size: file.size, path: file.path, ...(file.lfs ? { lfs: file.lfs } : {}) }
  }

  private dirEntry(dir: string): object {
    return { type: 'directory', oid: createHash('sha1').update(dir).digest('hex'), size: 0, path: dir }
  }

  private tree(repo: Repo, prefix: string, recursive: boolean): object[] {
    const out: object[] = []
    const dirs = new Set<string>()
    for (const rel of [...repo.files.keys()].sort()) {
      if (prefix && !rel.startsWith(`${prefix}/`)) continue
      const parts = (prefix ? rel.slice(prefix.length + 1) : rel).split('/')
      for (let i = 1; i < parts.length && (recursive || i === 1); i++) {
        const dir = [...(prefix ? [prefix] : []), ...parts.slice(0, i)].join('/')
        if (!dirs.has(dir)) {
          dirs.add(dir)
          out.push(this.dirEntry(dir))
        }
      }
      if (recursive || parts.length === 1) out.push(this.entry(repo.files.get(rel)!))
    }
    return out
  }

  private serveLfs(
    sha256: string,
    record: HubRequest,
    send: (s: number, b: Buffer | object, h?: Record<string, string>, file?: boolean) => void,
    fail: (s: number, c: string | null, m: string) => void,
  ) {
    const roots = ['models', 'datasets'].flatMap((kind) => {
      const dir = path.join(this.options.root, kind)
      return (statSync(dir, { throwIfNoEntry: false }) ? readdirSync(dir) : []).flatMap((org) =>
        readdirSync(path.join(dir, org)).map((name) => [kind === 'models' ? 'model' : 'dataset', `${org}/${name}`] as const),
      )
    })
    for (const [type, id] of roots) {
      const file = [...(this.repo(type, id)?.files.values() ?? [])].find((f) => f.lfs?.oid === sha256)
      if (file) {
        record.repo = id
        return send(200, readFileSync(file.full), { ETag: `"${sha256}"`, 'Content-Type': 'application/octet-stream' }, true)
      }
    }
    fail(404, null, 'Not Found')
  }
}

/** Starts a Hub double over the repos under `root`. */
export async function startHub(options: HubServerOptions): Promise<HubServer> {
  const hub = new HubServer(options)
  await hub.start()
  return hub
}
