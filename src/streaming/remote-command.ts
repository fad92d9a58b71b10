/**
 * One exec or attach, whatever the transport: the transport (spdy-transport.ts,
 * websocket.ts) hands over the client's streams as plain Node streams; this builds the
 * StreamIO the domain takes, makes the domain call, writes the status the protocol version
 * wants, and closes or destroys everything.
 *
 * The domain never ends stdout/stderr (the contract): they are ended here, after the call
 * settles and before the status, so the client has all the output when it reads the status.
 * When the client goes away first, the call's AbortSignal fires (the domain kills the exec
 * process and its terminal) and every stream is destroyed.
 */
import type { Readable, Writable } from 'node:stream';
import type { StreamIO, TerminalSize } from '../domain/stream-io';
import type { Logger } from '../obs/logger';
import type { RemoteCommandRequest, StreamingDomain } from './requests';
import { internalError, nonZeroExit, success, type Status } from './status';

/** The client's side of one remote command, as a transport opened it. */
export interface RemoteCommandChannels {
  stdin: Readable | null;
  stdout: Writable | null;
  stderr: Writable | null;
  /** bytes of JSON {"Width","Height"} objects, one after another; null without a terminal */
  resize: Readable | null;
  /** writes the status in the negotiated protocol's form and ends the error stream */
  writeStatus(status: Status): Promise<void>;
  /** ends the connection once everything queued is written */
  close(): void;
  /** ends it abruptly */
  destroy(): void;
  /** aborted when the client goes away (connection closed or broken) */
  gone: AbortSignal;
}

export async function serveRemoteCommand(req: RemoteCommandRequest, ch: RemoteCommandChannels, domain: StreamingDomain, log: Logger): Promise<void> {
  const io = streamIO(req.tty, ch);
  let status: Status;
  try {
    if (req.kind === 'exec') {
      const { exitCode } = await domain.execStream(req.containerId, req.cmd, io, ch.gone);
      status = exitCode === 0 ? success : nonZeroExit(exitCode, req.cmd);
    } else {
      await domain.attach(req.containerId, io, ch.gone);
      status = success;
    }
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (!ch.gone.aborted) log.warn({ err: e, container: req.containerId }, `streaming ${req.kind} failed`);
    status = internalError(`error ${req.kind === 'exec' ? 'executing command in' : 'attaching to'} container: ${message}`);
  }
  if (ch.gone.aborted) {
    ch.destroy();
    return;
  }
  try {
    await Promise.all([endWritable(ch.stdout), endWritable(ch.stderr)]);
    await ch.writeStatus(status);
    ch.close();
  } catch (e) {
    log.debug({ err: e }, `streaming ${req.kind}: the client went away before the status`);
    ch.destroy();
  }
}

function streamIO(tty: boolean, ch: RemoteCommandChannels): StreamIO {
  let listener: ((size: TerminalSize) => void) | null = null;
  let latest: TerminalSize | null = null;
  if (ch.resize) {
    const splitter = new JsonObjectSplitter();
    ch.resize.on('data', (chunk: Buffer) => {
      for (const text of splitter.push(chunk)) {
        const size = parseSize(text);
        if (!size) continue;
        latest = size;
        listener?.(size);
      }
    });
    ch.resize.on('error', () => {});
  }
  return {
    stdin: ch.stdin,
    stdout: ch.stdout,
    stderr: tty ? null : ch.stderr,
    tty,
    onResize(l) {
      listener = l;
      if (latest) l(latest);
    },
  };
}

/** kubelet decodes remotecommand.TerminalSize {Width, Height uint16}; anything else is skipped. */
function parseSize(text: string): TerminalSize | null {
  try {
    const v = JSON.parse(text) as { Width?: unknown; Height?: unknown };
    const width = Number(v.Width ?? 0);
    const height = Number(v.Height ?? 0);
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0 || width > 0xffff || height > 0xffff) return null;
    return { width, height };
  } catch {
    return null;
  }
}

function endWritable(w: Writable | null): Promise<void> {
  if (!w || w.writableFinished) return Promise.resolve();
  if (w.destroyed) return Promise.reject(new Error('stream destroyed'));
  return new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    w.once('error', onError);
    w.once('close', () => (w.writableFinished ? resolve() : reject(new Error('stream closed'))));
    w.end(() => {
      w.off('error', onError);
      resolve();
    });
  });
}

/**
 * Splits a byte stream of concatenated JSON objects (what Go's json.Decoder reads) into the
 * objects' texts, across chunk boundaries. A message longer than maxBytes is dropped: sizes
 * are a few dozen bytes, and a client sending megabytes of one object gets no buffer for it.
 */
export class JsonObjectSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;

  constructor(private readonly maxBytes = 4096) {}

  push(chunk: Buffer | string): string[] {
    const out: string[] = [];
    for (const c of chunk.toString()) {
      if (this.depth === 0) {
        if (c !== '{') continue; // whitespace between objects, or junk
        this.buf = '';
      }
      this.buf += c;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') this.inString = true;
      else if (c === '{') this.depth++;
      else if (c === '}' && --this.depth === 0) out.push(this.buf);
      if (this.buf.length > this.maxBytes) {
        this.buf = '';
        this.depth = 0;
        this.inString = false;
        this.escaped = false;
      }
    }
    return out;
  }
}
