/**
 * nodecri's streaming server: the http(s) endpoint the URLs of Exec, Attach and PortForward
 * point at, as kubelet's streaming library serves them (pkg/kubelet/cri/streaming/server.go):
 * `/exec/TOKEN`, `/attach/TOKEN`, `/portforward/TOKEN`, each token single-use (see
 * request-cache.ts). A request must upgrade, to WebSocket (websocket.ts) or to SPDY/3.1
 * (spdy-transport.ts); anything else is refused. An unknown, used or expired token, or one
 * made for another kind of request, is 404 as kubelet answers it.
 *
 * Connections: each socket idles out after idleTimeoutMs without a byte either way (kubelet's
 * default stream idle timeout, 4 hours); close() destroys every connection, which aborts the
 * domain calls they carry.
 */
import fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../obs/logger';
import { listenOn } from '../util/listen';
import { isWebSocketUpgrade, portForwardProtocols, remoteCommandProtocols, spdyHandshake } from './handshake';
import { replyError } from './http-reply';
import { RequestCache, type RequestCacheOptions } from './request-cache';
import type { AttachRequest, ExecRequest, PortForwardRequest, StreamingDomain, StreamRequest } from './requests';
import { serveSpdy } from './spdy-transport';
import { negotiateWebSocketProtocol, portForwardWebSocketProtocols, remoteCommandWebSocketProtocols, serveWebSocketPortForward, serveWebSocketRemoteCommand } from './websocket';

/** kubelet's DefaultConfig.StreamIdleTimeout */
export const defaultIdleTimeoutMs = 4 * 60 * 60 * 1000;
/**
 * A bound on the pod connections port-forward holds at once (each is a socket, an fd), across
 * sessions: a session alone may open 1000 streams, and any number of sessions may be open.
 */
export const defaultMaxPortForwardConnections = 4096;

/** The TCP keepalive of the streaming connections (Go's net/http default, which kubelet's streaming server has). */
export const keepAliveMs = 15_000;
/** apimachinery's DefaultStreamCreationTimeout */
export const defaultStreamCreationTimeoutMs = 30_000;

export interface StreamingServerOptions {
  /** host:port; port 0 picks a free one */
  address: string;
  /** PEM; both or neither: https when given */
  tls: { cert: Buffer; key: Buffer } | null;
  domain: StreamingDomain;
  log: Logger;
  idleTimeoutMs?: number;
  streamCreationTimeoutMs?: number;
  /** port-forward connections open at once across every session; more are refused. Default defaultMaxPortForwardConnections. */
  maxPortForwardConnections?: number;
  /** the token cache's clock, TTL and bound (tests) */
  cache?: RequestCacheOptions;
}

/** The [streaming] TLS files read (a missing or unreadable one fails the start, naming it); null without TLS. */
export async function readStreamingTls(c: { tlsCertFile: string | null; tlsKeyFile: string | null }): Promise<{ cert: Buffer; key: Buffer } | null> {
  if (c.tlsCertFile === null || c.tlsKeyFile === null) return null;
  const read = (file: string, key: string) =>
    fsp.readFile(file).catch((e: NodeJS.ErrnoException) => {
      throw new Error(`streaming.${key} ${file}: ${e.code ?? e.message}`, { cause: e });
    });
  return { cert: await read(c.tlsCertFile, 'tls_cert_file'), key: await read(c.tlsKeyFile, 'tls_key_file') };
}

export interface StreamingUrls {
  exec(req: Omit<ExecRequest, 'kind'>): string;
  attach(req: Omit<AttachRequest, 'kind'>): string;
  portForward(req: Omit<PortForwardRequest, 'kind'>): string;
}

export class StreamingServer implements StreamingUrls {
  private readonly cache: RequestCache<StreamRequest>;
  private readonly sockets = new Set<Duplex>();
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    // a frame is at most what one read of the client gave; kubectl sends 32 KiB at most
    maxPayload: 1 << 20,
    // the protocol onUpgrade negotiated for this request ("" for none: no header)
    handleProtocols: (_offered, req) => this.negotiated.get(req) || false,
  });
  private readonly negotiated = new WeakMap<http.IncomingMessage, string>();
  private readonly idleTimeoutMs: number;
  readonly streamCreationTimeoutMs: number;
  /** the domain the transports call: port-forward's connections counted against the bound */
  private readonly domain: StreamingDomain;
  private portForwardConnections = 0;
  private closing = false;

  private constructor(
    private readonly server: http.Server,
    private readonly opts: StreamingServerOptions,
    /** http(s)://host:port */
    readonly baseUrl: string,
  ) {
    this.cache = new RequestCache(opts.cache);
    this.idleTimeoutMs = opts.idleTimeoutMs ?? defaultIdleTimeoutMs;
    this.streamCreationTimeoutMs = opts.streamCreationTimeoutMs ?? defaultStreamCreationTimeoutMs;
    this.domain = this.boundedDomain(opts.domain, opts.maxPortForwardConnections ?? defaultMaxPortForwardConnections);
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.onPlainRequest(req, res));
  }

  static async start(opts: StreamingServerOptions): Promise<StreamingServer> {
    const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }) : http.createServer();
    const bound = await listenOn(server, opts.address);
    return new StreamingServer(server, opts, `${opts.tls ? 'https' : 'http'}://${bound}`);
  }

  /** host:port actually bound */
  get address(): string {
    return this.baseUrl.replace(/^https?:\/\//, '');
  }

  exec(req: Omit<ExecRequest, 'kind'>): string {
    return this.url('exec', { kind: 'exec', ...req });
  }

  attach(req: Omit<AttachRequest, 'kind'>): string {
    return this.url('attach', { kind: 'attach', ...req });
  }

  portForward(req: Omit<PortForwardRequest, 'kind'>): string {
    return this.url('portforward', { kind: 'portforward', ...req });
  }

  /** Bytes written to the connections that their sockets have not handed to the kernel yet. */
  get bufferedBytes(): number {
    let n = 0;
    for (const s of this.sockets) n += s.writableLength;
    return n;
  }

  /** Stops listening and destroys every connection (their domain calls are aborted). */
  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.server.closeAllConnections();
    this.wss.close();
    await closed;
  }

  /** Port-forward connections open at once (tests and diagnostics). */
  get portForwardConnectionCount(): number {
    return this.portForwardConnections;
  }

  /** The domain with portForward refusing a connection past `max` open at once (counted until its socket closes). */
  private boundedDomain(domain: StreamingDomain, max: number): StreamingDomain {
    return {
      execStream: (...a) => domain.execStream(...a),
      attach: (...a) => domain.attach(...a),
      portForward: async (sandboxId, port) => {
        if (this.portForwardConnections >= max) {
          this.opts.log.warn({ sandbox: sandboxId, port, open: this.portForwardConnections }, 'port-forward connection refused: too many open');
          throw new Error(`too many port-forward connections open (${max})`);
        }
        this.portForwardConnections++;
        let socket: Socket;
        try {
          socket = await domain.portForward(sandboxId, port);
        } catch (e) {
          this.portForwardConnections--;
          throw e;
        }
        if (socket.destroyed) this.portForwardConnections--;
        else socket.once('close', () => this.portForwardConnections--);
        return socket;
      },
    };
  }

  private url(path: string, req: StreamRequest): string {
    return `${this.baseUrl}/${path}/${this.cache.insert(req)}`;
  }

  /** The request the URL's token names, taken out of the cache; null (then 404) when there is none. */
  private consume(url: string | undefined): StreamRequest | null {
    const m = /^\/(exec|attach|portforward)\/([^/?#]+)(?:[?#].*)?$/.exec(url ?? '');
    if (!m) return null;
    // Tokens are base64url, which never needs percent-encoding: the path is taken as it is
    // (decoding it would throw on a malformed escape, in the HTTP parser's own callback).
    const req = this.cache.consume(m[2]);
    return req && req.kind === m[1] ? req : null;
  }

  private onPlainRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const request = this.consume(req.url);
    const [code, message] = request ? [400, 'unable to upgrade: streaming requests must upgrade to SPDY/3.1 or websocket'] : [404, '404 page not found'];
    res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }).end(`${message}\n`);
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    try {
      this.upgrade(req, socket, head);
    } catch (e) {
      // a bug, never a crash of the daemon: this connection only
      this.opts.log.error({ err: e }, 'streaming upgrade failed');
      socket.destroy();
    }
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.track(socket);
    // A client whose host vanished is found out in minutes, not at the idle timeout: Go's HTTP
    // server (kubelet's streaming server) turns TCP keepalive on at 15 s for every connection.
    (socket as Partial<Socket>).setKeepAlive?.(true, keepAliveMs);
    if (req.method !== 'GET' && req.method !== 'POST') return replyError(socket, 405, 'method not allowed');
    const request = this.consume(req.url);
    if (!request) return replyError(socket, 404, '404 page not found');
    const log = this.opts.log.child({ stream: request.kind, ...(request.kind === 'portforward' ? { sandbox: request.sandboxId } : { container: request.containerId }) });

    if (isWebSocketUpgrade(req)) {
      const supported = request.kind === 'portforward' ? portForwardWebSocketProtocols : remoteCommandWebSocketProtocols;
      const offered = (req.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p);
      const protocol = negotiateWebSocketProtocol(offered, supported);
      if (protocol === null) {
        return replyError(socket, 403, `requested protocol(s) are not supported: [${offered.join(' ')}]; supports [${supported.join(' ')}]`);
      }
      this.negotiated.set(req, protocol);
      this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        this.idleOut(socket); // after ws took the socket: it clears any timeout set before
        const served =
          request.kind === 'portforward'
            ? serveWebSocketPortForward(ws, protocol, request, this.domain, log, socket)
            : serveWebSocketRemoteCommand(ws, protocol, request, this.domain, log, socket);
        served.catch((e: unknown) => {
          log.warn({ err: e }, 'streaming request failed');
          ws.terminate();
        });
      });
      return;
    }

    const hs = spdyHandshake(req, request.kind === 'portforward' ? portForwardProtocols : remoteCommandProtocols);
    if (!hs.ok) return replyError(socket, hs.code, hs.message, hs.headers);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${hs.protocol}\r\n\r\n`);
    if (head.length > 0) socket.unshift(head);
    this.idleOut(socket);
    serveSpdy(socket, hs.protocol, request, { domain: this.domain, log, streamCreationTimeoutMs: this.streamCreationTimeoutMs }).catch((e: unknown) => {
      log.warn({ err: e }, 'streaming request failed');
      socket.destroy();
    });
  }

  private track(socket: Duplex): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** An upgraded connection without a byte either way for idleTimeoutMs is closed. */
  private idleOut(socket: Duplex): void {
    (socket as Socket).setTimeout?.(this.idleTimeoutMs, () => {
      this.opts.log.debug('streaming connection idle: closed');
      socket.destroy();
    });
  }
}
