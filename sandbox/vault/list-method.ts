// Vault clients send the non-standard `LIST` HTTP method, which Node's HTTP parser rejects
// (HPE_INVALID_METHOD) before any framework sees it. The stand-in therefore rewrites `LIST <path>`
// request lines of each accepted connection into `GET <path>` plus a marker header before the
// HTTP server reads them; the app restores the method from it.

import type net from 'node:net';
import { Duplex } from 'node:stream';

export const LIST_MARKER_HEADER = 'x-vault-sandbox-method';

const EMPTY = Buffer.alloc(0);
const MAX_HEAD = 64 * 1024;

type Mode = 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'trailer';

/** Rewrites LIST request heads in one connection's byte stream, tracking message framing. */
export function createListRewriter(): (chunk: Buffer) => Buffer {
  let mode: Mode = 'head';
  let pending = EMPTY;
  let remaining = 0;
  let line = '';

  const rewriteHead = (head: string): string => {
    const start = head.length - head.replace(/^(\r\n)+/, '').length;
    if (!head.startsWith('LIST ', start)) return head;
    const lineEnd = head.indexOf('\r\n', start);
    return `${head.slice(0, start)}GET ${head.slice(start + 5, lineEnd)}\r\n${LIST_MARKER_HEADER}: LIST${head.slice(lineEnd)}`;
  };

  const enterBody = (head: string) => {
    if (/^transfer-encoding:[^\r\n]*chunked/im.test(head)) {
      mode = 'chunk-size';
      return;
    }
    remaining = Number(/^content-length:\s*(\d+)\s*$/im.exec(head)?.[1] ?? 0);
    mode = remaining > 0 ? 'body' : 'head';
  };

  return (chunk) => {
    const out: Buffer[] = [];
    let rest = chunk;
    while (rest.length > 0) {
      if (mode === 'head') {
        pending = Buffer.concat([pending, rest]);
        rest = EMPTY;
        const end = pending.indexOf('\r\n\r\n');
        if (end === -1) {
          // Not an HTTP head we understand: pass it on and let the parser answer.
          if (pending.length > MAX_HEAD) {
            out.push(pending);
            pending = EMPTY;
          }
          break;
        }
        const head = pending.subarray(0, end + 4).toString('latin1');
        rest = pending.subarray(end + 4);
        pending = EMPTY;
        out.push(Buffer.from(rewriteHead(head), 'latin1'));
        enterBody(head);
        continue;
      }
      if (mode === 'body' || mode === 'chunk-data') {
        const take = Math.min(remaining, rest.length);
        out.push(rest.subarray(0, take));
        rest = rest.subarray(take);
        remaining -= take;
        if (remaining === 0) mode = mode === 'body' ? 'head' : 'chunk-size';
        continue;
      }
      const newline = rest.indexOf('\n');
      const part = newline === -1 ? rest : rest.subarray(0, newline + 1);
      out.push(part);
      rest = rest.subarray(part.length);
      line += part.toString('latin1');
      if (newline === -1) continue;
      const text = line.trim();
      line = '';
      if (mode === 'chunk-size') {
        const size = Number.parseInt(text.split(';')[0] ?? '', 16);
        if (size > 0) {
          mode = 'chunk-data';
          remaining = size + 2;
        } else {
          mode = 'trailer';
        }
      } else if (text === '') {
        mode = 'head';
      }
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  };
}

/** One connection (plain or already decrypted TLS) as the HTTP server should read it. */
export function listRewritingStream(socket: net.Socket): Duplex {
  const rewrite = createListRewriter();
  const stream = new Duplex({
    read: () => {
      socket.resume();
    },
    write: (chunk, encoding, callback) => {
      socket.write(chunk, encoding, callback);
    },
    final: (callback) => {
      socket.end(() => callback());
    },
    destroy: (error, callback) => {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    const bytes = rewrite(chunk);
    if (bytes.length > 0 && !stream.push(bytes)) socket.pause();
  });
  socket.on('end', () => stream.push(null));
  socket.on('error', (error) => stream.destroy(error));
  socket.on('close', () => stream.destroy());
  socket.on('timeout', () => stream.emit('timeout'));
  // The HTTP server reads addresses and tunes timeouts through these socket members.
  Object.assign(stream, {
    encrypted: (socket as net.Socket & { encrypted?: boolean }).encrypted === true,
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    remoteFamily: socket.remoteFamily,
    localAddress: socket.localAddress,
    localPort: socket.localPort,
    setTimeout: (ms: number, callback?: () => void) => {
      socket.setTimeout(ms, callback);
      return stream;
    },
    setNoDelay: (noDelay?: boolean) => {
      socket.setNoDelay(noDelay);
      return stream;
    },
    setKeepAlive: (enable?: boolean, delay?: number) => {
      socket.setKeepAlive(enable, delay);
      return stream;
    },
  });
  return stream;
}
