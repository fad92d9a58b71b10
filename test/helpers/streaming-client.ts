/**
 * Clients of nodecri's streaming server, as kubectl and crictl speak to it, for the tests and
 * the benchmarks: a remote command (exec or attach) and a port-forward, over SPDY/3.1 (the
 * k8s httpstream upgrade, then the spdy/ session in the client role, streams opened in
 * kubectl's order) or over WebSocket (`ws`, a channel byte per message).
 *
 * Nothing here has a timeout of its own: the test file's timeout bounds every wait.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { SpdySession, type SpdyStream } from '../../src/streaming/spdy/session';

export type StreamTransport = 'spdy' | 'websocket';

/** For an https streaming server: the CA to trust, or no verification at all. */
export interface ClientTls {
  ca?: Buffer;
  insecure?: boolean;
}

export interface RemoteCommandOptions {
  transport: StreamTransport;
  /** default v4.channel.k8s.io (spdy) / v5.channel.k8s.io (websocket); a comma-separated list offers several */
  protocol?: string;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  tls?: ClientTls;
}

export interface RemoteCommandResult {
  stdout: Buffer;
  stderr: Buffer;
  /** from the status (v4 and later); 0 for an earlier protocol's empty error stream; null when unknown */
  exitCode: number | null;
  /** the metav1.Status of a v4/v5 error stream */
  status: Record<string, unknown> | null;
  /** the failure's message (v4 status message, or an earlier protocol's error text) */
  error: string | null;
}

export interface RemoteCommandSession {
  /** the protocol the server chose */
  protocol: string;
  write(data: Buffer | string): void;
  endStdin(): void;
  resize(width: number, height: number): void;
  stdout(): Buffer;
  waitFor(pattern: RegExp | string, stream?: 'stdout' | 'stderr'): Promise<void>;
  close(): void;
  done: Promise<RemoteCommandResult>;
}

export interface PortForwardSession {
  connect(port: number): Promise<Duplex>;
  close(): void;
}

/** An HTTP answer that refused the upgrade. */
export class UpgradeRefused extends Error {
  constructor(
    readonly statusCode: number,
    readonly body: string,
    readonly headers: http.IncomingHttpHeaders,
  ) {
    super(`upgrade refused: ${statusCode} ${body.trim()}`);
  }
}

/** Output collected per stream, with waiters for a pattern in it. */
class Collected {
  private chunks: Buffer[] = [];
  private text = '';
  private waiters: { pattern: RegExp | string; resolve: () => void }[] = [];

  add(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.text += b.toString('latin1');
    this.waiters = this.waiters.filter((w) => {
      if (!matches(this.text, w.pattern)) return true;
      w.resolve();
      return false;
    });
  }

  all(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  waitFor(pattern: RegExp | string): Promise<void> {
    if (matches(this.text, pattern)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ pattern, resolve }));
  }
}

function matches(text: string, p: RegExp | string): boolean {
  return typeof p === 'string' ? text.includes(p) : p.test(text);
}

function resultOf(stdout: Buffer, stderr: Buffer, errorBytes: Buffer, v4: boolean): RemoteCommandResult {
  const text = errorBytes.toString();
  if (!v4) return { stdout, stderr, exitCode: text ? null : 0, status: null, error: text || null };
  if (!text) return { stdout, stderr, exitCode: null, status: null, error: 'no status on the error stream' };
  const status = JSON.parse(text) as Record<string, unknown> & {
    status?: string;
    reason?: string;
    message?: string;
    details?: { causes?: { reason?: string; message?: string }[] };
  };
  if (status.status === 'Success') return { stdout, stderr, exitCode: 0, status, error: null };
  const cause = status.reason === 'NonZeroExitCode' ? status.details?.causes?.find((c) => c.reason === 'ExitCode') : undefined;
  return { stdout, stderr, exitCode: cause?.message !== undefined ? Number(cause.message) : null, status, error: status.message ?? 'failure' };
}

// ---- remote command ----

export async function openRemoteCommand(url: string, opts: RemoteCommandOptions): Promise<RemoteCommandSession> {
  return opts.transport === 'spdy' ? openSpdyRemoteCommand(url, opts) : openWebSocketRemoteCommand(url, opts);
}

export async function runRemoteCommand(url: string, opts: RemoteCommandOptions & { input?: Buffer }): Promise<RemoteCommandResult> {
  const s = await openRemoteCommand(url, opts);
  if (opts.input) s.write(opts.input);
  if (opts.stdin) s.endStdin();
  return s.done;
}

async function openWebSocketRemoteCommand(url: string, opts: RemoteCommandOptions): Promise<RemoteCommandSession> {
  const offered = (opts.protocol ?? 'v5.channel.k8s.io').split(',').map((p) => p.trim());
  const out = new Collected();
  const err = new Collected();
  const errors: Buffer[] = [];
  const ws = await openWebSocket(url, offered, opts.tls, (data: Buffer) => {
    if (data.length === 0) return;
    const payload = data.subarray(1);
    if (data[0] === 1) out.add(payload);
    else if (data[0] === 2) err.add(payload);
    else if (data[0] === 3) errors.push(payload);
  });
  const protocol = ws.protocol;
  const v4 = protocol.startsWith('v4.') || protocol.startsWith('v5.');
  const sender = frameSender(ws);
  const done = new Promise<RemoteCommandResult>((resolve) => {
    ws.once('close', () => resolve(resultOf(out.all(), err.all(), Buffer.concat(errors), v4)));
  });
  return {
    protocol,
    write: (data) => {
      const b = Buffer.from(data);
      for (let i = 0; i < b.length; i += 32 * 1024) void sender(0, b.subarray(i, i + 32 * 1024));
    },
    endStdin: () => {
      if (protocol === 'v5.channel.k8s.io') void sender(255, Buffer.of(0));
    },
    resize: (width, height) => void sender(4, Buffer.from(JSON.stringify({ Width: width, Height: height }))),
    stdout: () => out.all(),
    waitFor: (p, stream = 'stdout') => (stream === 'stdout' ? out : err).waitFor(p),
    close: () => ws.terminate(),
    done,
  };
}

/** Sends [channel, ...data] messages in order, one at a time (each after `ws` wrote the last). */
function frameSender(ws: WebSocket): (channel: number, data: Buffer) => Promise<void> {
  let chain = Promise.resolve();
  return (channel, data) => {
    const frame = Buffer.concat([Buffer.of(channel), data]);
    return (chain = chain.then(
      () =>
        new Promise<void>((resolve) => {
          if (ws.readyState !== ws.OPEN) return resolve();
          ws.send(frame, { binary: true }, () => resolve());
        }),
    ));
  };
}

/** Opens the WebSocket; onMessage is registered before it opens (messages may come with the 101). */
function openWebSocket(url: string, protocols: string[], tls: ClientTls | undefined, onMessage: (data: Buffer) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), protocols, { perMessageDeflate: false, ca: tls?.ca, rejectUnauthorized: !tls?.insecure });
    ws.on('message', onMessage);
    ws.once('open', () => {
      ws.off('error', reject);
      resolve(ws);
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => reject(new UpgradeRefused(res.statusCode ?? 0, body, res.headers)));
      ws.off('error', reject);
    });
    ws.once('error', reject);
  });
}

/** The k8s httpstream upgrade to SPDY/3.1, as kubectl's SpdyRoundTripper does it. */
async function spdyUpgrade(url: string, protocols: string, tls: ClientTls | undefined): Promise<{ session: SpdySession; protocol: string }> {
  const u = new URL(url);
  const request = (u.protocol === 'https:' ? https : http).request(u, {
    method: 'POST',
    headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': protocols },
    ca: tls?.ca,
    rejectUnauthorized: !tls?.insecure,
  });
  const socket = await new Promise<{ socket: Socket; protocol: string }>((resolve, reject) => {
    request.once('upgrade', (res: http.IncomingMessage, s: Socket, head: Buffer) => {
      if (head.length > 0) s.unshift(head);
      resolve({ socket: s, protocol: String(res.headers['x-stream-protocol-version'] ?? '') });
    });
    request.once('response', (res: http.IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => reject(new UpgradeRefused(res.statusCode ?? 0, body, res.headers)));
    });
    request.once('error', reject);
    request.end();
  });
  const session = new SpdySession(socket.socket, { role: 'client' });
  session.on('error', () => {});
  return { session, protocol: socket.protocol };
}

async function openSpdyRemoteCommand(url: string, opts: RemoteCommandOptions): Promise<RemoteCommandSession> {
  const { session, protocol } = await spdyUpgrade(url, opts.protocol ?? 'v4.channel.k8s.io', opts.tls);
  const v4 = protocol === 'v4.channel.k8s.io';
  const resizable = v4 || protocol === 'v3.channel.k8s.io';
  const out = new Collected();
  const err = new Collected();
  const errors: Buffer[] = [];
  // Each stream is read from the moment it exists: the server may answer, end its streams and
  // close the session before the last of them is open here.
  const reading: Promise<void>[] = [];
  const open = async (type: string, sink: ((b: Buffer) => void) | null): Promise<SpdyStream> => {
    const s = await session.openStream({ streamtype: type }, { fin: sink !== null });
    s.on('error', () => {});
    if (sink) {
      s.on('data', sink);
      reading.push(new Promise<void>((resolve) => (s.readableEnded || s.destroyed ? resolve() : (s.once('end', resolve), s.once('close', resolve)))));
    }
    return s;
  };
  // kubectl's order: error, stdin, stdout, stderr, resize
  await open('error', (b) => errors.push(b));
  const stdin = opts.stdin ? await open('stdin', null) : null;
  if (opts.stdout) await open('stdout', (b) => out.add(b));
  if (opts.stderr && !opts.tty) await open('stderr', (b) => err.add(b));
  const resize = opts.tty && resizable ? await open('resize', null) : null;
  const outputs = Promise.all(reading);
  const gone = new Promise<void>((resolve) => session.once('close', resolve));
  const done = Promise.race([outputs, gone]).then(() => {
    session.close();
    return resultOf(out.all(), err.all(), Buffer.concat(errors), v4);
  });
  return {
    protocol,
    write: (data) => {
      stdin?.write(Buffer.from(data));
    },
    endStdin: () => stdin?.end(),
    resize: (width, height) => {
      resize?.write(JSON.stringify({ Width: width, Height: height }));
    },
    stdout: () => out.all(),
    waitFor: (p, stream = 'stdout') => (stream === 'stdout' ? out : err).waitFor(p),
    close: () => session.destroy(),
    done,
  };
}

// ---- port-forward ----

export async function openPortForward(url: string, opts: { transport: StreamTransport; tls?: ClientTls }): Promise<PortForwardSession> {
  return opts.transport === 'spdy' ? openSpdyPortForward(url, opts.tls) : openWebSocketPortForward(url, opts.tls);
}

async function openSpdyPortForward(url: string, tls: ClientTls | undefined): Promise<PortForwardSession> {
  const { session } = await spdyUpgrade(url, 'portforward.k8s.io', tls);
  let nextRequest = 0;
  const opened = new Set<Duplex>();
  return {
    async connect(port) {
      const requestid = String(nextRequest++);
      const headers = { port: String(port), requestid };
      // kubectl's order: the error stream, then the data stream
      const error = await session.openStream({ ...headers, streamtype: 'error' }, { fin: true });
      const data = await session.openStream({ ...headers, streamtype: 'data' });
      let message = '';
      error.on('data', (b: Buffer) => (message += b.toString()));
      error.on('error', () => {});
      // The server may end or reset the data stream before the error stream's text has come
      // (kubelet resets it on a failed connection): what the caller sees of the data stream's
      // end waits for the error stream's end, and is the error when there is one.
      const errorDone = new Promise<void>((resolve) => {
        error.once('end', resolve);
        error.once('close', resolve);
      });
      const conn: Duplex = new Duplex({
        read: () => data.resume(),
        write: (chunk: Buffer, _enc, cb) => data.write(chunk, cb),
        final: (cb) => data.end(cb),
        destroy: (err, cb) => {
          data.destroy();
          error.destroy();
          cb(err);
        },
      });
      data.on('data', (b: Buffer) => conn.push(b) || data.pause());
      data.on('error', () => {});
      data.once('end', () => void errorDone.then(() => (message ? conn.destroy(new Error(message)) : conn.push(null))));
      data.once('close', () => {
        if (!data.readableEnded) void errorDone.then(() => conn.destroy(new Error(message || data.abortError?.message || 'data stream closed')));
      });
      opened.add(conn);
      conn.once('close', () => opened.delete(conn));
      return conn;
    },
    // the caller asked for the end: its streams end quietly, not with the session's error
    close: () => {
      for (const s of opened) s.destroy();
      session.close();
    },
  };
}

async function openWebSocketPortForward(url: string, tls: ClientTls | undefined): Promise<PortForwardSession> {
  /** port -> its data channel, from the first message of each data channel */
  const ports = new Map<number, number>();
  const announced = new Set<number>();
  const streams = new Map<number, Duplex>();
  const errorText = new Map<number, string>();
  const waiting: (() => void)[] = [];
  const ws = await openWebSocket(url, ['v4.channel.k8s.io'], tls, (data: Buffer) => {
    if (data.length === 0) return;
    const channel = data[0];
    const payload = data.subarray(1);
    if (!announced.has(channel)) {
      announced.add(channel);
      if (channel % 2 === 0 && payload.length >= 2) ports.set(payload.readUInt16LE(0), channel);
      waiting.splice(0).forEach((w) => w());
      return;
    }
    if (channel % 2 === 0) streams.get(channel)?.push(payload);
    else {
      errorText.set(channel - 1, (errorText.get(channel - 1) ?? '') + payload.toString());
      streams.get(channel - 1)?.destroy(new Error(errorText.get(channel - 1)));
    }
  });
  const sender = frameSender(ws);
  ws.on('close', () => {
    waiting.splice(0).forEach((w) => w());
    for (const [channel, s] of streams) {
      const message = errorText.get(channel);
      if (message) s.destroy(new Error(message));
      else s.push(null);
    }
  });
  return {
    async connect(port) {
      while (!ports.has(port)) {
        if (ws.readyState !== ws.OPEN) throw new Error(`port ${port} was not forwarded`);
        await new Promise<void>((resolve) => waiting.push(resolve));
      }
      const channel = ports.get(port)!;
      if (streams.has(channel)) throw new Error(`port ${port} is already connected (one connection per port over websocket)`);
      const s = new Duplex({
        read: () => {},
        write: (chunk: Buffer, _enc, cb) => {
          void sender(channel, chunk).then(() => cb());
        },
      });
      streams.set(channel, s);
      const failed = errorText.get(channel);
      if (failed) process.nextTick(() => s.destroy(new Error(failed)));
      return s;
    },
    close: () => ws.close(),
  };
}
