// Serves a stand-in's Fastify app on 127.0.0.1 over HTTP and, given a certificate, over HTTPS as
// well. Connections are accepted here and handed to the app's HTTP server, so a stand-in can
// rework the byte stream first (Vault's LIST method) on either listener.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { FastifyInstance } from 'fastify';
import type { TlsIdentity } from './tls.ts';

export type { TlsIdentity } from './tls.ts';

export interface StandInListeners {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `https://127.0.0.1:PORT` when a certificate was given. */
  httpsUrl?: string;
  close(): Promise<void>;
}

export interface ServeOptions {
  port?: number | undefined;
  tls?: TlsIdentity | undefined;
  /** Reworks each accepted (and, for HTTPS, decrypted) connection before the app reads it. */
  connection?: (socket: net.Socket) => Duplex;
}

async function listen(server: net.Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return (server.address() as net.AddressInfo).port;
}

export async function serveOn(app: FastifyInstance, options: ServeOptions): Promise<StandInListeners> {
  await app.ready();
  const sockets = new Set<net.Socket>();
  const hand = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    app.server.emit('connection', options.connection ? options.connection(socket) : socket);
  };
  const servers: net.Server[] = [net.createServer(hand)];
  const url = `http://127.0.0.1:${await listen(servers[0]!, options.port ?? 0)}`;
  let httpsUrl: string | undefined;
  if (options.tls) {
    const secure = tls.createServer({ key: options.tls.keyPem, cert: options.tls.certPem }, hand);
    // A client that gives up during the handshake is no concern of the app's.
    secure.on('tlsClientError', () => {});
    servers.push(secure);
    httpsUrl = `https://127.0.0.1:${await listen(secure, 0)}`;
  }
  return {
    url,
    ...(httpsUrl ? { httpsUrl } : {}),
    async close() {
      const closed = servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      for (const socket of sockets) socket.destroy();
      await Promise.all(closed);
      await app.close();
    },
  };
}
