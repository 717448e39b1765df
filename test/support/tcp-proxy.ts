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

export async function startCountingProxy(upstreamPort: number): Promise<CountingProxy> {
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
    sockets.add(client).add(upstream)
    upstream.once('connect', () => proxy.upstreamPorts.push(upstream.localPort ?? 0))
    client.on('data', (chunk: Buffer) => (proxy.bytesUp += chunk.length))
    upstream.on('data', (chunk: Buffer) => (proxy.bytesDown += chunk.length))
    client.pipe(upstream)
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
