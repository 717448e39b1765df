import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { access, appendFile, constants, readdir, readFile, writeFile } from 'node:fs/promises'
import http from 'node:http'
import type { Duplex } from 'node:stream'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseLabelSelector, type Labels } from './label-selector.ts'

// TEST DOUBLE of a Kubernetes API server: no cluster can run on these machines, but the real
// `kubectl` client can talk to this. It serves what `kubectl exec` and `kubectl get pods --selector`
// need and nothing else: discovery (/version, /api, /apis, /api/v1), GET of a namespace and a pod,
// LIST of a namespace's pods by label selector (label-selector.ts), and the pod's `exec` subresource over
// WebSocket (protocol v5.channel.k8s.io: stdin, stdout, stderr, the status channel with the exit
// code, and the close signal for stdin). Each command runs in a bubblewrap sandbox per container
// (test/support/pod-sandbox.sh).
//
// One server plays every cluster: a kubeconfig context points at http://127.0.0.1:PORT/ctx/CTX.
// Pods are directories under ROOT:
//   contexts/CTX/namespaces/NS/pods/POD/
//     containers/NAME/     one per container (see pod-sandbox.sh for what it holds); a file
//                          `no-bash` there plays an image without bash (nothing on PATH)
//     default-container    optional: the kubectl.kubernetes.io/default-container annotation
//     phase                optional: Pending, Running (default), Succeeded or Failed
//     labels               optional: the pod's labels, one key=value a line, which
//                          `kubectl get pods --selector` picks pods by
// Every exec that ran appends "CTX NS POD CONTAINER STDIN_BYTES" to ROOT/exec.log when it ends.

const SANDBOX = fileURLToPath(new URL('./pod-sandbox.sh', import.meta.url))
const POD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
const PROTOCOL = 'v5.channel.k8s.io'
const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, error: 3, close: 255 } as const

export interface KubeApiServer {
  /** http://127.0.0.1:PORT: a context CTX is served at `${url}/ctx/CTX`. */
  url: string
  stop(): Promise<void>
}

interface Pod {
  context: string
  namespace: string
  name: string
  dir: string
  containers: string[]
  defaultContainer?: string
  phase: string
  labels: Labels
}

type Status = { code: number; reason: string; message: string; details?: object }

/** A failure as the API server words it (kubectl prints its message). */
function statusBody(status: Status): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', ...status })
}
const SUCCESS = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' })
const notFound = (kind: 'pods' | 'namespaces', name: string): Status => ({
  code: 404,
  reason: 'NotFound',
  message: `${kind} "${name}" not found`,
  details: { name, kind },
})
const NO_RESOURCE: Status = { code: 404, reason: 'NotFound', message: 'the server could not find the requested resource' }

async function readPod(root: string, context: string, namespace: string, name: string): Promise<Pod | undefined> {
  const dir = path.join(root, 'contexts', context, 'namespaces', namespace, 'pods', name)
  const containers = (await readdir(path.join(dir, 'containers')).catch(() => [])).sort()
  if (containers.length === 0) return undefined
  const text = async (file: string) => (await readFile(path.join(dir, file), 'utf8').catch(() => '')).trim() || undefined
  return {
    context,
    namespace,
    name,
    dir,
    containers,
    defaultContainer: await text('default-container'),
    phase: (await text('phase')) ?? 'Running',
    labels: parseLabels((await text('labels')) ?? ''),
  }
}

/** The `labels` file: key=value lines (the value may hold '='), blank lines skipped. */
function parseLabels(text: string): Labels {
  const labels: Labels = {}
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line) continue
    const eq = line.indexOf('=')
    if (eq < 0) labels[line] = ''
    else labels[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return labels
}

/** The namespace's pods, sorted by name as the API server lists them (its storage's key order). */
async function listPods(root: string, context: string, namespace: string): Promise<Pod[]> {
  const names = await readdir(path.join(root, 'contexts', context, 'namespaces', namespace, 'pods')).catch(() => [])
  const pods = await Promise.all(names.filter((n) => new RegExp(`^${NAME}$`).test(n)).map((n) => readPod(root, context, namespace, n)))
  return pods.filter((p) => p !== undefined).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

function podObject(pod: Pod): object {
  const running = pod.phase === 'Running'
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name: pod.name,
      namespace: pod.namespace,
      uid: createHash('sha1').update(pod.dir).digest('hex'),
      ...(Object.keys(pod.labels).length ? { labels: pod.labels } : {}),
      ...(pod.defaultContainer ? { annotations: { 'kubectl.kubernetes.io/default-container': pod.defaultContainer } } : {}),
    },
    spec: { nodeName: 'sandbox-node', containers: pod.containers.map((name) => ({ name, image: `example/${name}` })) },
    status: {
      phase: pod.phase,
      containerStatuses: pod.containers.map((name) => ({
        name,
        ready: running,
        state: running ? { running: { startedAt: '2026-01-01T00:00:00Z' } } : { waiting: { reason: 'ContainerCreating' } },
      })),
    },
  }
}

const DISCOVERY: Record<string, object> = {
  '/version': { major: '1', minor: '32', gitVersion: 'v1.32.4', platform: 'linux/amd64' },
  '/api': { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] },
  '/apis': { kind: 'APIGroupList', apiVersion: 'v1', groups: [] },
  '/api/v1': {
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: [
      { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['get'], shortNames: ['ns'] },
      { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list'], shortNames: ['po'] },
      { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
    ],
  },
}

// Names start with a letter or digit: none can climb out of ROOT ('..') or hide a '/' (%2F).
const NAME = '([A-Za-z0-9][A-Za-z0-9_.:@-]*)'
const EXEC_URL = new RegExp(`^/ctx/${NAME}/api/v1/namespaces/${NAME}/pods/${NAME}/exec$`)
const NAMESPACE_URL = new RegExp(`^/ctx/${NAME}/api/v1/namespaces/${NAME}$`)
const POD_URL = new RegExp(`^/ctx/${NAME}/api/v1/namespaces/${NAME}/pods/${NAME}$`)
const PODS_URL = new RegExp(`^/ctx/${NAME}/api/v1/namespaces/${NAME}/pods$`)

/** Starts the server on a free port of 127.0.0.1, serving the pods under root. */
export async function startKubeApiServer(root: string): Promise<KubeApiServer> {
  const sessions = new Set<{ kill(): void }>()
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x')
      const discovery = /^\/ctx\/[^/]+(\/.*)$/.exec(url.pathname)?.[1]
      const send = (code: number, body: string) => {
        res.writeHead(code, { 'content-type': 'application/json' })
        res.end(body)
      }
      if (req.method === 'GET' && discovery && DISCOVERY[discovery]) return send(200, JSON.stringify(DISCOVERY[discovery]))
      const namespace = NAMESPACE_URL.exec(url.pathname)
      if (req.method === 'GET' && namespace) {
        const [context, name] = namespace.slice(1) as [string, string]
        const exists = await access(path.join(root, 'contexts', context, 'namespaces', name)).then(
          () => true,
          () => false,
        )
        if (exists)
          return send(200, JSON.stringify({ kind: 'Namespace', apiVersion: 'v1', metadata: { name }, status: { phase: 'Active' } }))
        return send(404, statusBody(notFound('namespaces', name)))
      }
      const match = POD_URL.exec(url.pathname)
      if (req.method === 'GET' && match) {
        const [context, namespace, name] = match.slice(1) as [string, string, string]
        const pod = await readPod(root, context, namespace, name)
        if (pod) return send(200, JSON.stringify(podObject(pod)))
        return send(404, statusBody(notFound('pods', name)))
      }
      const list = PODS_URL.exec(url.pathname)
      if (req.method === 'GET' && list) {
        const [context, namespace] = list.slice(1) as [string, string]
        let selected: (labels: Labels) => boolean
        try {
          selected = parseLabelSelector(url.searchParams.get('labelSelector') ?? '')
        } catch (error) {
          return send(400, statusBody({ code: 400, reason: 'BadRequest', message: (error as Error).message }))
        }
        // As the real server: a namespace that does not exist lists no pods (200, not 404: a list
        // reads its storage's prefix and never looks the namespace up); kubectl's table then says
        // "No resources found in NS namespace.", and -o jsonpath prints nothing. `limit` (kubectl
        // asks for 500) is not honoured: the API lets a server answer every item without a
        // `continue` token, and kubectl then asks no more. The answer is a PodList even when the
        // Accept header asks for a Table first (kubectl's table output): kubectl then prints its
        // built-in NAME and AGE columns instead of the server's.
        const items = (await listPods(root, context, namespace)).filter((pod) => selected(pod.labels)).map(podObject)
        return send(200, JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items }))
      }
      send(404, statusBody(NO_RESOURCE))
    })()
  })
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x')
      const exec = EXEC_URL.exec(url.pathname)
      const refuse = (status: Status) => {
        const body = statusBody(status)
        socket.end(
          `HTTP/1.1 ${status.code} ${http.STATUS_CODES[status.code]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        )
      }
      if (!exec) return refuse(NO_RESOURCE)
      // kubectl's SPDY fallback (Upgrade: SPDY/3.1) comes here too, and gets the same refusals.
      const target = await resolveExec(root, exec, url)
      if ('refusal' in target) return refuse(target.refusal)
      const offered = String(req.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((p) => p.trim())
      const key = req.headers['sec-websocket-key']
      if (String(req.headers.upgrade).toLowerCase() !== 'websocket' || !key || !offered.includes(PROTOCOL)) {
        return refuse({ code: 400, reason: 'BadRequest', message: `this API server double speaks WebSocket (${PROTOCOL}) only` })
      }
      const accept = createHash('sha1').update(`${key}${WS_GUID}`).digest('base64')
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${PROTOCOL}\r\n\r\n`,
      )
      const session = await runExec(root, target.pod, target.container, url.searchParams.getAll('command'), socket)
      sessions.add(session)
      socket.on('close', () => sessions.delete(session))
    })()
  })
  // Upgraded sockets are no longer HTTP connections, yet close() waits for them: stop() ends all.
  const sockets = new Set<Duplex>()
  server.on('connection', (socket: Duplex) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      for (const session of sessions) session.kill()
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/** The pod and container of an exec, or why the API server or kubelet would refuse it (their Status). */
async function resolveExec(root: string, match: RegExpExecArray, url: URL): Promise<{ refusal: Status } | { pod: Pod; container: string }> {
  const [context, namespace, name] = match.slice(1) as [string, string, string]
  const pod = await readPod(root, context, namespace, name)
  if (!pod) return { refusal: notFound('pods', name) }
  const container = url.searchParams.get('container') ?? pod.defaultContainer ?? pod.containers[0]!
  const refuse = (message: string) => ({ refusal: { code: 400, reason: 'BadRequest', message } })
  if (!pod.containers.includes(container)) return refuse(`container ${container} is not valid for pod ${name}`)
  if (pod.phase !== 'Running') return refuse(`container not found ("${container}")`)
  if (url.searchParams.getAll('command').length === 0) return refuse('you must specify at least 1 command')
  return { pod, container }
}

/** The first directory on the pod's PATH holding an executable `name` (host /usr is the pod's). */
async function lookPath(name: string, podPath: string): Promise<boolean> {
  if (name.includes('/'))
    return access(name, constants.X_OK).then(
      () => true,
      () => false,
    )
  for (const dir of podPath.split(':')) {
    if (
      await access(path.join(dir, name), constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return true
  }
  return false
}

/** Runs the command in the container's sandbox, its streams framed on the WebSocket. */
async function runExec(root: string, pod: Pod, container: string, command: string[], socket: Duplex): Promise<{ kill(): void }> {
  const containerDir = path.join(pod.dir, 'containers', container)
  const noBash = await access(path.join(containerDir, 'no-bash')).then(
    () => true,
    () => false,
  )
  const podPath = noBash ? '/nonexistent' : POD_PATH
  const found = await lookPath(command[0]!, podPath)
  const ws = new WebSocketChannels(socket)
  let stdinBytes = 0
  const finish = async (status: string) => {
    await appendFile(path.join(root, 'exec.log'), `${pod.context} ${pod.namespace} ${pod.name} ${container} ${stdinBytes}\n`)
    ws.send(CHANNEL.error, Buffer.from(status))
    ws.close()
  }
  if (!found) {
    // containerd's answer when the image lacks the program.
    const message = `Internal error occurred: error executing command in container: failed to exec in container: failed to start exec "${randomBytes(32).toString('hex')}": OCI runtime exec failed: exec failed: unable to start container process: exec: "${command[0]}": executable file not found in $PATH: unknown`
    await finish(statusBody({ code: 500, reason: 'InternalError', message, details: { causes: [{ message }] } }))
    return { kill() {} }
  }
  const child = spawn(SANDBOX, [containerDir, pod.name, podPath, '--', ...command], { stdio: ['pipe', 'pipe', 'pipe'] })
  child.stdin.on('error', () => {})
  const pump = (stream: NodeJS.ReadableStream, channel: number) =>
    new Promise<void>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        if (!ws.send(channel, chunk)) {
          stream.pause()
          socket.once('drain', () => stream.resume())
        }
      })
      stream.on('end', resolve)
    })
  ws.onMessage = (data) => {
    const channel = data[0]
    // Once the command has ended, what still comes on stdin is read and dropped, as a kubelet does.
    if (channel === CHANNEL.stdin && child.stdin.writable) {
      stdinBytes += data.length - 1
      if (!child.stdin.write(data.subarray(1))) {
        socket.pause()
        child.stdin.once('drain', () => socket.resume())
      }
    } else if (channel === CHANNEL.close && data[1] === CHANNEL.stdin) child.stdin.end()
  }
  ws.onClose = () => {
    child.stdin.end()
    if (child.exitCode === null) child.kill('SIGKILL')
  }
  const outputs = Promise.all([pump(child.stdout, CHANNEL.stdout), pump(child.stderr, CHANNEL.stderr)])
  void (async () => {
    const code = await new Promise<number>((resolve) => child.on('close', (c, signal) => resolve(c ?? (signal ? 128 + 9 : 1))))
    child.stdin.destroy()
    socket.resume()
    await outputs
    if (code === 0) return finish(SUCCESS)
    const message = `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${code}`
    await finish(
      statusBody({ code: 500, reason: 'NonZeroExitCode', message, details: { causes: [{ reason: 'ExitCode', message: String(code) }] } }),
    )
  })()
  return { kill: () => child.kill('SIGKILL') }
}

/** Server side of RFC 6455, binary messages only: each message is one channel byte and its data. */
class WebSocketChannels {
  onMessage: (data: Buffer) => void = () => {}
  onClose: () => void = () => {}
  private buffered = Buffer.alloc(0)
  private fragments: Buffer[] = []
  private closed = false

  constructor(private readonly socket: Duplex) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk])
      this.parse()
    })
    socket.on('close', () => this.onClose())
    socket.on('error', () => this.onClose())
  }

  /** Sends data on a channel; false when the socket wants the writer to wait for 'drain'. */
  send(channel: number, data: Buffer): boolean {
    return this.frame(0x2, Buffer.concat([Buffer.from([channel]), data]))
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.frame(0x8, Buffer.from([0x03, 0xe8]))
    this.socket.end()
  }

  private frame(opcode: number, payload: Buffer): boolean {
    if (this.socket.destroyed || this.socket.writableEnded) return true
    const length = payload.length
    const head = length < 126 ? Buffer.from([0x80 | opcode, length]) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10)
    if (length >= 126 && length < 65536) {
      head[0] = 0x80 | opcode
      head[1] = 126
      head.writeUInt16BE(length, 2)
    } else if (length >= 65536) {
      head[0] = 0x80 | opcode
      head[1] = 127
      head.writeBigUInt64BE(BigInt(length), 2)
    }
    return this.socket.write(Buffer.concat([head, payload]))
  }

  private parse(): void {
    for (;;) {
      const b = this.buffered
      if (b.length < 2) return
      const fin = (b[0]! & 0x80) !== 0
      const opcode = b[0]! & 0x0f
      const masked = (b[1]! & 0x80) !== 0
      let length = b[1]! & 0x7f
      let offset = 2
      if (length === 126) {
        if (b.length < 4) return
        length = b.readUInt16BE(2)
        offset = 4
      } else if (length === 127) {
        if (b.length < 10) return
        length = Number(b.readBigUInt64BE(2))
        offset = 10
      }
      const maskOffset = offset
      if (masked) offset += 4
      if (b.length < offset + length) return
      const payload = Buffer.from(b.subarray(offset, offset + length))
      if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= b[maskOffset + (i % 4)]!
      this.buffered = b.subarray(offset + length)
      if (opcode === 0x8) {
        this.close()
        continue
      }
      if (opcode === 0x9) {
        this.frame(0xa, payload)
        continue
      }
      if (opcode === 0xa) continue
      this.fragments.push(payload)
      if (fin) {
        const message = Buffer.concat(this.fragments)
        this.fragments = []
        if (message.length > 0) this.onMessage(message)
      }
    }
  }
}

/** Writes a kubeconfig holding one context per name, each at its own path of the server. */
export async function writeKubeconfig(file: string, server: string, contexts: string[]): Promise<void> {
  const q = (s: string) => JSON.stringify(s)
  const lines = ['apiVersion: v1', 'kind: Config', 'clusters:']
  for (const c of contexts) lines.push(`- name: ${q(c)}`, '  cluster:', `    server: ${q(`${server}/ctx/${encodeURIComponent(c)}`)}`)
  lines.push('users:', '- name: tester', '  user: {}', 'contexts:')
  for (const c of contexts) lines.push(`- name: ${q(c)}`, '  context:', `    cluster: ${q(c)}`, '    user: tester')
  await writeFile(file, lines.join('\n') + '\n', { mode: 0o600 })
}
