/**
 * The WebSocket transport (`ws` does the framing), as kubelet's streaming library and the
 * API server's wsstream speak it: every message starts with a channel byte (0 stdin,
 * 1 stdout, 2 stderr, 3 error, 4 resize for a remote command; 2n data and 2n+1 error of the
 * n-th port for a port-forward). The base64 subprotocols send text messages whose first
 * character is the channel digit and whose rest is base64. v5.channel.k8s.io adds the close
 * signal: a message [255, channel] ends that channel (the client closing its stdin).
 *
 * Backpressure both ways: a channel the server reads is a Readable, and the socket is paused
 * while any such Readable is over its high-water mark (the set of full readers: one reader
 * asking for more must not resume the socket while another is still full); a channel the server writes is a
 * Writable whose write completes only once `ws` has handed the frame to the socket.
 */
import { type Duplex, Readable, Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Logger } from '../obs/logger';
import { serveRemoteCommand } from './remote-command';
import type { PortForwardRequest, RemoteCommandRequest, StreamingDomain } from './requests';
import { encodeStatusV1, encodeStatusV4 } from './status';
import { forwardError, forwardPort } from './port-forward';

export const remoteCommandWebSocketProtocols = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v4.base64.channel.k8s.io', 'channel.k8s.io', 'base64.channel.k8s.io'] as const;
export const portForwardWebSocketProtocols = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io'] as const;

const closeChannel = 255;
/** How long a client that half-closed its connection has to take what is queued (as spdy/session.ts's closeGraceMs). */
const halfClosedGraceMs = 5000;

/**
 * kubelet's negotiation (wsstream handshake): the first protocol the client offers that the
 * server knows; no Sec-WebSocket-Protocol at all is the "" protocol (binary, v1 status);
 * offers that all miss are refused (null).
 */
export function negotiateWebSocketProtocol(offered: readonly string[], supported: readonly string[]): string | null {
  if (offered.length === 0) return '';
  return offered.find((p) => supported.includes(p)) ?? null;
}

/** The channels of one WebSocket connection. */
export class ChannelConnection {
  private readonly readers = new Map<number, Readable>();
  /** readers over their high-water mark: the socket stays paused while there is one */
  private readonly full = new Set<Readable>();
  /** channels the client closed (v5 close signal): their later data is dropped */
  private readonly closedChannels = new Set<number>();
  private readonly writers = new Set<Writable>();
  private readonly base64: boolean;
  private readonly closeSignal: boolean;
  readonly gone: AbortSignal;
  private readonly goneController = new AbortController();

  constructor(
    readonly ws: WebSocket,
    readonly protocol: string,
    /** the connection's socket: its end (the client half-closed) is the client gone, see below */
    socket?: Duplex,
  ) {
    this.base64 = protocol.includes('base64.');
    this.closeSignal = protocol === 'v5.channel.k8s.io';
    this.gone = this.goneController.signal;
    ws.on('message', (data: Buffer) => this.onMessage(data));
    ws.on('close', () => this.onGone());
    ws.on('error', () => this.onGone());
    // `ws` emits 'close' only once the socket closes, and its end of a socket the client
    // half-closed never finishes while the client reads nothing: the call (a process, a
    // terminal) is aborted at the client's end, and the socket cut off after a grace.
    socket?.once('end', () => {
      this.onGone();
      const timer = setTimeout(() => ws.terminate(), halfClosedGraceMs);
      socket.once('close', () => clearTimeout(timer));
    });
  }

  /** A channel the client writes: frames for it become this Readable's bytes. */
  reader(channel: number): Readable {
    const r = new Readable({
      read: () => this.release(r),
    });
    r.on('error', () => {});
    r.on('close', () => this.release(r));
    this.readers.set(channel, r);
    return r;
  }

  /** A channel the server writes. */
  writer(channel: number): Writable {
    const w = new Writable({
      write: (chunk: Buffer, _enc, cb) => this.send(channel, chunk, cb),
      final: (cb) => cb(),
    });
    w.on('error', () => {});
    this.writers.add(w);
    return w;
  }

  send(channel: number, data: Buffer, cb: (err?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) {
      cb(new Error('websocket closed'));
      return;
    }
    const frame = this.base64 ? String.fromCharCode(48 + channel) + data.toString('base64') : Buffer.concat([Buffer.of(channel), data]);
    this.ws.send(frame, { binary: !this.base64 }, (err) => cb(err ?? null));
  }

  close(): void {
    for (const r of this.readers.values()) r.destroy();
    this.full.clear();
    // a socket paused for a reader nobody reads any more would never read the client's close frame
    this.ws.resume();
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
  }

  destroy(): void {
    for (const r of this.readers.values()) r.destroy();
    for (const w of this.writers) w.destroy();
    this.ws.terminate();
  }

  private onMessage(raw: Buffer): void {
    if (raw.length === 0) return;
    let channel = raw[0];
    let data = raw.subarray(1);
    if (this.base64) {
      channel -= 48;
      data = Buffer.from(data.toString(), 'base64');
    }
    if (this.closeSignal && raw[0] === closeChannel) {
      if (data.length > 0 && !this.closedChannels.has(data[0])) {
        this.closedChannels.add(data[0]);
        this.readers.get(data[0])?.push(null);
      }
      return;
    }
    if (this.closedChannels.has(channel)) return; // after its close signal: a push would destroy the reader
    const r = this.readers.get(channel);
    if (!r || r.readableEnded || r.destroyed) return; // kubelet ignores channels it did not open
    if (!r.push(data)) {
      this.full.add(r);
      this.ws.pause();
    }
  }

  /** A reader that wants more (or is gone) no longer holds the socket; it resumes once none does. */
  private release(r: Readable): void {
    this.full.delete(r);
    if (this.full.size === 0) this.ws.resume();
  }

  private onGone(): void {
    if (this.gone.aborted) return;
    for (const r of this.readers.values()) if (!r.readableEnded) r.destroy(new Error('websocket closed'));
    for (const w of this.writers) if (!w.writableFinished) w.destroy(new Error('websocket closed'));
    this.goneController.abort(new Error('the client went away'));
  }
}

export function serveWebSocketRemoteCommand(ws: WebSocket, protocol: string, req: RemoteCommandRequest, domain: StreamingDomain, log: Logger, socket?: Duplex): Promise<void> {
  const conn = new ChannelConnection(ws, protocol, socket);
  const stdout = req.stdout ? conn.writer(1) : null;
  const stderr = req.stderr && !req.tty ? conn.writer(2) : null;
  // As kubelet: an empty message on the lowest channel the server writes tells the client
  // the streams are set up.
  conn.send(stdout ? 1 : stderr ? 2 : 3, Buffer.alloc(0), () => {});
  const v4 = protocol.startsWith('v4.') || protocol.startsWith('v5.');
  return serveRemoteCommand(
    req,
    {
      stdin: req.stdin ? conn.reader(0) : null,
      stdout,
      stderr,
      resize: req.tty ? conn.reader(4) : null,
      gone: conn.gone,
      writeStatus: (status) =>
        new Promise<void>((resolve, reject) => {
          const bytes = v4 ? encodeStatusV4(status) : encodeStatusV1(status);
          if (!bytes) return resolve();
          conn.send(3, bytes, (err) => (err ? reject(err) : resolve()));
        }),
      close: () => conn.close(),
      destroy: () => conn.destroy(),
    },
    domain,
    log,
  );
}

/**
 * Port-forward over WebSocket (kubelet's portforward/websocket.go): the ports are the ones
 * the PortForward RPC named, channel 2n carries data of the n-th port both ways and 2n+1
 * its errors; the first message on each carries the port (uint16, little endian). Each
 * port is one connection; the WebSocket closes when all of them are done.
 */
export async function serveWebSocketPortForward(ws: WebSocket, protocol: string, req: PortForwardRequest, domain: StreamingDomain, log: Logger, socket?: Duplex): Promise<void> {
  const conn = new ChannelConnection(ws, protocol, socket);
  await Promise.all(
    req.ports.map(async (port, n) => {
      const portBytes = Buffer.alloc(2);
      portBytes.writeUInt16LE(port);
      const input = conn.reader(2 * n);
      const output = conn.writer(2 * n);
      const errors = conn.writer(2 * n + 1);
      output.write(portBytes);
      errors.write(portBytes);
      try {
        await forwardPort(domain, req.sandboxId, port, input, output, conn.gone);
      } catch (e) {
        if (conn.gone.aborted) return;
        const message = forwardError(port, req.sandboxId, e);
        log.debug({ port, sandbox: req.sandboxId, err: e }, 'port-forward failed');
        await new Promise<void>((resolve) => errors.write(message, () => resolve()));
      }
    }),
  );
  if (conn.gone.aborted) conn.destroy();
  else conn.close();
}
