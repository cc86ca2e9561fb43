/**
 * An HTTP-aware TCP (or TLS-terminating) proxy in front of a real service, for tests of what the network does to a
 * client: it records the head of every HTTP request it forwards (so a test can see the headers the
 * client really sent) and can drop dead after a number of requests — every connection reset and the
 * port closed, as when the service's host goes away mid-run.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';

export interface HttpProxy {
  url: string;
  port: number;
  /** The request heads forwarded so far (request line and headers). */
  heads: string[];
  /** Resets every connection and stops listening. */
  kill(): Promise<void>;
}

export interface HttpProxyOptions {
  target: { host: string; port: number };
  tls?: { key: Buffer; cert: Buffer };
  /** Kill the proxy when this request starts (it is not forwarded). */
  killAtRequest?: number;
}

const REQUEST_LINE = /^(GET|HEAD|POST|PUT|DELETE) \S+ HTTP\/1\.1\r\n/;

export async function startHttpProxy(opts: HttpProxyOptions): Promise<HttpProxy> {
  const sockets = new Set<Socket>();
  const heads: string[] = [];
  let killed = false;
  let server: Server;
  const kill = async () => {
    if (killed) return;
    killed = true;
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  const onClient = (client: Socket) => {
    const upstream = connect(opts.target.port, opts.target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      if (REQUEST_LINE.test(text)) {
        if (opts.killAtRequest !== undefined && heads.length + 1 >= opts.killAtRequest) {
          void kill();
          return;
        }
        heads.push(text.slice(0, Math.max(0, text.indexOf('\r\n\r\n'))));
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  };
  server = opts.tls ? createTlsServer(opts.tls, onClient) : createServer(onClient);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`, port, heads, kill };
}
