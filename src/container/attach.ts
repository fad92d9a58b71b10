/**
 * Attach: a client connected to a running container's own stdio, as CRI-O's conmon does it
 * without a conmon. Output: the readers that write the CRI log (FIFO read ends, or the pty
 * master) hand every chunk to each attached client too, so several attaches all see it
 * and the log misses nothing. The log alone holds the readers back (its backpressure):
 * an attached client never does. A client that cannot take the output as fast as it comes
 * has up to attachBufferBytes waiting for it; what comes beyond that is dropped for that
 * client alone (counted and warned about), as a slow client must stall neither the log
 * nor the container. Input: a container created with `stdin` keeps its stdin (the write
 * end of its pipe, or a writer of its pty master: containerStdin) for as long as it runs;
 * every attach with stdin writes into it, paused while it takes no more. With `stdin_once`
 * the first attach's stdin is the only one: when it ends (or that attach does), the
 * container's stdin is closed and it reads EOF (a terminal's input is only no longer fed).
 */
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { StreamIO } from '../domain/stream-io';
import type { ProcessHandle } from '../native/process';
import type { ContainerContext, Live, LogReader } from './context';
import { runningContainer } from './exec';
import type { ContainerRecord } from './model';
import { whenAborted } from '../util/abort';

/** Output bytes that may wait for one attached client before more is dropped for it. */
export const attachBufferBytes = 1024 * 1024;

/**
 * The container's stdin as attach writes it, made with its process: the stdin pipe's write
 * end (owned by the socket from then on), or a writer of the pty master; null when the
 * container was created without stdin. Closed by the live state's closeStdio.
 */
export function containerStdin(ctx: ContainerContext, r: ContainerRecord, handle: Pick<ProcessHandle, 'terminal' | 'stdin'>): Writable | null {
  let stdin: Writable | null = null;
  if (handle.terminal !== null) stdin = r.spec.stdin ? ctx.opts.host.terminalWriter(handle.terminal) : null;
  else if (handle.stdin !== null) stdin = new net.Socket({ fd: handle.stdin, readable: false, writable: true });
  // EPIPE once the container no longer reads it, EIO once its terminal is gone: the writes
  // are dropped from then on.
  stdin?.on('error', () => {});
  return stdin;
}

/** What attach keeps per container beside its live state. */
interface AttachState {
  /** a stdin_once container's stdin has had its one attach */
  stdinTaken: boolean;
}

const states = new WeakMap<Live, AttachState>();

function stateOf(live: Live): AttachState {
  let s = states.get(live);
  if (!s) states.set(live, (s = { stdinTaken: false }));
  return s;
}

/**
 * Attaches `io` to the running container's stdio until the container's exit is recorded
 * (its readers closed first, once its last output reached the log and every attached
 * client) or `signal` aborts (the client went away: nothing of it is left attached).
 * Never ends io's streams.
 */
export async function attach(ctx: ContainerContext, idOrPrefix: string, io: StreamIO, signal: AbortSignal): Promise<void> {
  const r = runningContainer(ctx, idOrPrefix);
  const live = ctx.live.get(r.id)!;
  const log = ctx.opts.log.child({ containerId: r.id });
  if (signal.aborted) return;
  const detach: Array<() => void> = [];
  const readers = live.readers.filter((x) => !x.sock.destroyed);
  for (const reader of readers) {
    const to = reader.stream === 'stdout' ? io.stdout : io.stderr;
    if (to)
      detach.push(
        fanOut(reader, to, (dropped) =>
          log.warn({ droppedBytes: dropped }, `attached client of container ${r.id} is too slow: ${dropped} bytes of ${reader.stream} dropped for it`),
        ),
      );
  }
  const terminal = readers.find((x) => x.terminal);
  if (terminal && io.tty) {
    io.onResize((size) => {
      // The fd number is free for reuse once the reader closed it.
      if (terminal.sock.destroyed) return;
      try {
        ctx.opts.host.resizeTerminal(terminal.fd, size);
      } catch {
        // the terminal is going away
      }
    });
  }
  if (io.stdin) detach.push(feedStdin(r, live, io.stdin));
  try {
    // The readers close once the exit is reaped and the log drained (what they read went
    // to every client by then); the exit is recorded right after: a client that asks the
    // status once the attach ended sees it exited.
    const exited = (async () => {
      await Promise.all(readers.map((x) => new Promise<void>((res) => (x.sock.destroyed ? res() : x.sock.once('close', () => res())))));
      await live.done;
    })();
    await Promise.race([exited, whenAborted(signal)]);
  } finally {
    for (const d of detach) d();
  }
}

/**
 * Hands every chunk `reader` reads to `to` too, never pausing the reader: up to
 * attachBufferBytes wait in `to`, what comes beyond is dropped for it (`onDrop` once per
 * burst of drops). Returns the detach.
 */
function fanOut(reader: LogReader, to: Writable, onDrop: (bytes: number) => void): () => void {
  let dropping = 0;
  const onData = (chunk: Buffer) => {
    if (to.destroyed || to.writableEnded) return;
    if (to.writableLength >= attachBufferBytes) {
      dropping += chunk.length;
      return;
    }
    if (dropping > 0) {
      onDrop(dropping);
      dropping = 0;
    }
    to.write(chunk);
  };
  reader.sock.on('data', onData);
  return () => {
    reader.sock.removeListener('data', onData);
    if (dropping > 0) onDrop(dropping);
  };
}

/**
 * Writes what the client sends into the container's stdin, pausing the client while the
 * stdin takes no more. With stdin_once, the first attach with stdin ends the container's
 * stdin when its own ends or it detaches, and any later attach's input is dropped. Returns
 * the detach.
 */
function feedStdin(r: ContainerRecord, live: Live, from: Readable): () => void {
  const target = live.stdin ?? null;
  const st = stateOf(live);
  const once = r.spec.stdinOnce;
  const usable = target !== null && !target.destroyed && !target.writableEnded && !(once && st.stdinTaken);
  if (!usable) {
    // Nothing reads it: the client's input is read and dropped, so that it never stalls.
    const drop = () => {};
    from.on('data', drop);
    from.resume();
    return () => from.removeListener('data', drop);
  }
  if (once) st.stdinTaken = true;
  let done = false;
  const onDrain = () => from.resume();
  const onData = (chunk: Buffer) => {
    if (target.destroyed || target.writableEnded) return;
    if (!target.write(chunk)) {
      from.pause();
      target.once('drain', onDrain);
    }
  };
  const finish = () => {
    if (done) return;
    done = true;
    from.removeListener('data', onData);
    from.removeListener('end', finish);
    target.removeListener('drain', onDrain);
    from.resume();
    if (once && !target.destroyed) target.end();
  };
  from.on('data', onData);
  from.once('end', finish);
  from.resume();
  return finish;
}
