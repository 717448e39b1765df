import { createServer, connect, type Socket } from 'node:net'

// A loopback TCP proxy that counts what crosses it: connections accepted, bytes each way, and the
// local ports of its own connections to the upstream (so sshd's log lines can be matched to a test).

export interface CountingProxy {
  port: number
  connections: number
  /** Client connections open right now. */
  active: number
  bytesUp: number
  bytesDown: number
  /** Source ports of the proxy's connections to the upstream, as sshd logs them. */
  upstreamPorts: number[]
  reset(): void
  close(): Promise<void>
}

/** `delayMs` holds each chunk sent towards the upstream that long: a slow link. */
export async function startCountingProxy(upstreamPort: number, options: { delayMs?: number } = {}): Promise<CountingProxy> {
  const sockets = new Set<Socket>()
  const proxy: CountingProxy = {
    port: 0,
    connections: 0,
    active: 0,
    bytesUp: 0,
    bytesDown: 0,
    upstreamPorts: [],
    reset() {
      proxy.connections = 0
      proxy.bytesUp = 0
      proxy.bytesDown = 0
      proxy.upstreamPorts = []
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
  const server = createServer((client) => {
    proxy.connections++
    proxy.active++
    const upstream = connect(upstreamPort, '127.0.0.1')
    // ssh sets TCP_NODELAY on its own sockets; a proxy without it would add Nagle's delays.
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    sockets.add(client).add(upstream)
    upstream.once('connect', () => proxy.upstreamPorts.push(upstream.localPort ?? 0))
    client.on('data', (chunk: Buffer) => (proxy.bytesUp += chunk.length))
    upstream.on('data', (chunk: Buffer) => (proxy.bytesDown += chunk.length))
    if (options.delayMs) {
      let chain = Promise.resolve()
      client.on('data', (chunk: Buffer) => {
        chain = chain.then(() => new Promise((resolve) => setTimeout(resolve, options.delayMs))).then(() => void upstream.write(chunk))
      })
    } else {
      client.pipe(upstream)
    }
    upstream.pipe(client)
    let ended = false
    const end = () => {
      if (!ended) proxy.active--
      ended = true
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  proxy.port = typeof address === 'object' && address ? address.port : 0
  return proxy
}

export interface ProxyCounts {
  connections: number
  bytesUp: number
  bytesDown: number
}

export interface CountingProxyProcess {
  port: number
  counts(): Promise<ProxyCounts>
  reset(): Promise<void>
  close(): Promise<void>
}

/**
 * The same proxy in a child process, for timing: in-process, its event loop would compete with
 * the code being measured and add latency to every round trip of it.
 */
export async function startCountingProxyProcess(upstreamPort: number): Promise<CountingProxyProcess> {
  const { fork } = await import('node:child_process')
  const child = fork(new URL(import.meta.url).pathname, ['--serve', String(upstreamPort)], { execArgv: ['--import', 'tsx'] })
  const ask = <T>(cmd: string) =>
    new Promise<T>((resolve) => {
      child.once('message', (reply) => resolve(reply as T))
      child.send(cmd)
    })
  const { port } = await new Promise<{ port: number }>((resolve) => child.once('message', (m) => resolve(m as { port: number })))
  return {
    port,
    counts: () => ask<ProxyCounts>('counts'),
    reset: () => ask<void>('reset'),
    close: async () => {
      child.kill()
      await new Promise((resolve) => child.once('exit', resolve))
    },
  }
}

if (process.argv[2] === '--serve' && process.send) {
  const proxy = await startCountingProxy(Number(process.argv[3]))
  process.on('disconnect', () => process.exit(0)) // the parent is gone: so are we
  process.send({ port: proxy.port })
  process.on('message', (cmd) => {
    if (cmd === 'reset') proxy.reset()
    process.send!(cmd === 'counts' ? { connections: proxy.connections, bytesUp: proxy.bytesUp, bytesDown: proxy.bytesDown } : {})
  })
}
