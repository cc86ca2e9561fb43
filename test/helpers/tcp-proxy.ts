/**
 * A TCP proxy in front of a real service, with a switch to cut it: the faults operators meet (a node
 * restart, a flapping link, a partition) without touching the service itself, which other test files
 * share.
 *
 * - `cut('reset')`: every open connection is reset and new ones are reset as soon as they are accepted
 *   (what a client sees when a node restarts or a load balancer drops it);
 * - `cut('blackhole')`: connections stay open but nothing goes through either way, and new ones are
 *   accepted and never answered (a partition or a stalled node: only the client's own timeouts help);
 * - `restore()`: new connections are forwarded again (connections cut in blackhole mode stay dead, as
 *   after a real partition the client has to reconnect).
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

export type CutMode = 'reset' | 'blackhole';

export interface TcpProxy {
  /** The proxy's own port on 127.0.0.1. */
  readonly port: number;
  /** Connections accepted so far (forwarded or not). */
  readonly accepted: number;
  cut(mode?: CutMode): void;
  restore(): void;
  /** Cuts for `ms`, then restores (resolves once restored). */
  cutFor(ms: number, mode?: CutMode): Promise<void>;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream?: Socket;
}

export async function startTcpProxy(target: { host?: string; port: number }): Promise<TcpProxy> {
  const host = target.host ?? '127.0.0.1';
  const pairs = new Set<Pair>();
  let mode: CutMode | null = null;
  let accepted = 0;

  const drop = (pair: Pair): void => {
    pairs.delete(pair);
    pair.client.resetAndDestroy();
    pair.upstream?.resetAndDestroy();
  };
  const silence = (pair: Pair): void => {
    // Stop forwarding both ways and swallow whatever arrives: the peer waits for an answer in vain.
    pair.client.unpipe();
    pair.upstream?.unpipe();
    pair.client.removeAllListeners('data');
    pair.upstream?.removeAllListeners('data');
    pair.client.on('data', () => {});
    pair.upstream?.on('data', () => {});
  };

  const server: Server = createServer((client) => {
    accepted++;
    const pair: Pair = { client };
    pairs.add(pair);
    client.on('error', () => {});
    client.on('close', () => {
      pairs.delete(pair);
      pair.upstream?.destroy();
    });
    if (mode === 'reset') return drop(pair);
    if (mode === 'blackhole') return silence(pair);
    const upstream = tcpConnect({ host, port: target.port });
    pair.upstream = upstream;
    upstream.on('error', () => drop(pair));
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('tcp proxy: no port');

  const proxy: TcpProxy = {
    port: address.port,
    get accepted() {
      return accepted;
    },
    cut(how: CutMode = 'reset') {
      mode = how;
      for (const pair of [...pairs]) {
        if (how === 'reset') drop(pair);
        else silence(pair);
      }
    },
    restore() {
      mode = null;
    },
    async cutFor(ms, how = 'reset') {
      proxy.cut(how);
      await new Promise((r) => setTimeout(r, ms));
      proxy.restore();
    },
    async close() {
      for (const pair of [...pairs]) drop(pair);
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
  return proxy;
}
