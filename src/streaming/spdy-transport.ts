/**
 * The SPDY/3.1 transport, after server.ts has done the httpstream handshake and sent 101:
 * the socket becomes a server-role SpdySession (spdy/session.ts, the framing) whose streams
 * the client opens.
 *
 * Remote command (remotecommand/httpstream.go): each stream says what it is in its
 * `streamtype` header (error, stdin, stdout, stderr, resize); the command runs once every
 * expected stream is there (the error stream, one per requested stdio, and the resize stream
 * with a terminal from v3 on), or the connection is dropped after the stream-creation
 * timeout. The v4 error stream carries the JSON metav1.Status, earlier ones the message.
 *
 * Port-forward (portforward/httpstream.go): the client opens a pair of streams per
 * connection, `streamtype` error and data, with the same `port` and `requestID` headers; each
 * complete pair is one connection to localhost:port in the pod, any failure written on its
 * error stream. The session lives until the client closes it.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../obs/logger';
import { serveRemoteCommand } from './remote-command';
import type { PortForwardRequest, RemoteCommandRequest, StreamingDomain, StreamRequest } from './requests';
import { RstStatus, SpdySession, type SpdyStream } from './spdy/session';
import { encodeStatusV1, encodeStatusV4 } from './status';
import { whenAborted } from '../util/abort';
import { forwardError, forwardPort } from './port-forward';

export interface SpdyContext {
  domain: StreamingDomain;
  log: Logger;
  streamCreationTimeoutMs: number;
}

export async function serveSpdy(socket: Duplex, protocol: string, request: StreamRequest, ctx: SpdyContext): Promise<void> {
  const session = new SpdySession(socket, { role: 'server' });
  session.on('error', (e: Error) => ctx.log.debug({ err: e }, 'spdy session error'));
  const controller = new AbortController();
  // 'terminated', not 'close': the socket of a client that half-closed and reads nothing closes
  // only after the session's grace, and its call (a process, a terminal) must not wait for that.
  session.once('terminated', () => controller.abort(new Error('the client went away')));
  if (request.kind === 'portforward') return servePortForward(session, request, controller.signal, ctx);
  return await serveSpdyRemoteCommand(session, protocol, request, controller.signal, ctx);
}

async function serveSpdyRemoteCommand(session: SpdySession, protocol: string, req: RemoteCommandRequest, gone: AbortSignal, ctx: SpdyContext): Promise<void> {
  const resizable = protocol === 'v4.channel.k8s.io' || protocol === 'v3.channel.k8s.io';
  const expected = 1 + Number(req.stdin) + Number(req.stdout) + Number(req.stderr && !req.tty) + Number(req.tty && resizable);
  const streams = await new Promise<Map<string, SpdyStream> | null>((resolve) => {
    const got = new Map<string, SpdyStream>();
    const done = (v: Map<string, SpdyStream> | null) => {
      clearTimeout(timer);
      session.off('stream', onStream);
      gone.removeEventListener('abort', onGone);
      resolve(v);
    };
    const onStream = (s: SpdyStream) => {
      const type = s.headers.streamtype ?? '';
      if (!['error', 'stdin', 'stdout', 'stderr', 'resize'].includes(type) || (type === 'resize' && !resizable)) {
        ctx.log.debug({ streamType: type }, 'unexpected stream type');
        s.reset();
        return;
      }
      got.get(type)?.reset(); // a second stream of a type replaces the first, as kubelet's assignment does
      got.set(type, s);
      if (got.size === expected) done(got);
    };
    const onGone = () => done(null);
    const timer = setTimeout(() => {
      ctx.log.warn('timed out waiting for client to create streams');
      done(null);
    }, ctx.streamCreationTimeoutMs);
    session.on('stream', onStream);
    gone.addEventListener('abort', onGone);
  });
  if (!streams) {
    session.destroy();
    return;
  }
  // Streams opened after the command started have no use: refused.
  session.on('stream', (s: SpdyStream) => s.reset());
  for (const s of streams.values()) s.on('error', () => {});
  const errorStream = streams.get('error');
  const v4 = protocol === 'v4.channel.k8s.io';
  await serveRemoteCommand(
    req,
    {
      stdin: req.stdin ? (streams.get('stdin') ?? null) : null,
      stdout: req.stdout ? (streams.get('stdout') ?? null) : null,
      stderr: req.stderr && !req.tty ? (streams.get('stderr') ?? null) : null,
      resize: streams.get('resize') ?? null,
      gone,
      writeStatus: (status) =>
        new Promise<void>((resolve, reject) => {
          if (!errorStream) return resolve();
          const bytes = v4 ? encodeStatusV4(status) : encodeStatusV1(status);
          if (bytes) errorStream.write(bytes);
          errorStream.once('error', reject);
          errorStream.end(() => resolve());
        }),
      close: () => session.close(),
      destroy: () => session.destroy(),
    },
    ctx.domain,
    ctx.log,
  );
}

/**
 * Port-forward pairs one stream of which has come and the other not yet: each holds its
 * stream (and headers) until the stream-creation timeout, so a client opening streams it never
 * pairs must not make the daemon hold them without bound. Kubelet's clients open one pair at a
 * time per connection; a new pair past this is refused (RST_STREAM REFUSED_STREAM).
 */
export const maxUnpairedPortForwardStreams = 128;

let sessionCount = 0;

interface StreamPair {
  requestId: string;
  data: SpdyStream | null;
  error: SpdyStream | null;
  timer: NodeJS.Timeout;
}

async function servePortForward(session: SpdySession, req: PortForwardRequest, gone: AbortSignal, ctx: SpdyContext): Promise<void> {
  const pairs = new Map<string, StreamPair>();
  const running = new Set<Promise<void>>();
  const conn = ++sessionCount; // kubelet names the connection in its timeout text (a pointer there)
  const onStream = (s: SpdyStream) => {
    s.on('error', () => {});
    const portText = s.headers.port ?? '';
    const port = /^\d+$/.test(portText) ? Number(portText) : NaN;
    const type = s.headers.streamtype ?? '';
    if (!(port >= 1 && port <= 65535) || (type !== 'data' && type !== 'error')) {
      ctx.log.debug({ port: portText, streamType: type }, 'port-forward stream refused');
      s.reset();
      return;
    }
    // Old clients send no requestID: kubelet pairs their streams by id (error n, data n+2).
    const requestId = s.headers.requestid || String(type === 'error' ? s.id : s.id - 2);
    let pair = pairs.get(requestId);
    if (!pair && pairs.size >= maxUnpairedPortForwardStreams) {
      ctx.log.warn({ port, requestId }, `port-forward stream refused: ${maxUnpairedPortForwardStreams} streams already wait for their pair`);
      s.reset(RstStatus.REFUSED_STREAM);
      return;
    }
    if (!pair) {
      const p: StreamPair = {
        requestId,
        data: null,
        error: null,
        timer: setTimeout(() => {
          pairs.delete(requestId);
          p.error?.end(`(conn=${conn}, request=${requestId}) timed out waiting for streams`);
          p.data?.reset();
        }, ctx.streamCreationTimeoutMs),
      };
      pair = p;
      pairs.set(requestId, p);
    }
    if (pair[type]) {
      pair.error?.write(`error processing stream for request ${requestId}: ${type} stream already assigned`);
      s.reset();
      return;
    }
    pair[type] = s;
    if (pair.data && pair.error) {
      clearTimeout(pair.timer);
      pairs.delete(requestId);
      // the port is the data stream's, as kubelet takes it
      const run = forwardPair(pair.data, pair.error, Number(pair.data.headers.port), req, gone, ctx);
      running.add(run);
      void run.finally(() => running.delete(run));
    }
  };
  session.on('stream', onStream);
  await whenAborted(gone);
  session.off('stream', onStream);
  for (const p of pairs.values()) clearTimeout(p.timer);
  await Promise.all(running);
}

async function forwardPair(data: SpdyStream, error: SpdyStream, port: number, req: PortForwardRequest, gone: AbortSignal, ctx: SpdyContext): Promise<void> {
  try {
    await forwardPort(ctx.domain, req.sandboxId, port, data, data, gone);
  } catch (e) {
    if (gone.aborted) return;
    ctx.log.debug({ port, err: e }, 'port-forward failed');
    // As kubelet: the error on the error stream, and the data stream reset, not finished (a
    // client reads no clean end of a connection that never was).
    error.end(forwardError(port, req.sandboxId, e));
    data.reset();
    return;
  }
  if (!data.writableEnded) data.end();
  if (!error.writableEnded) error.end();
}
