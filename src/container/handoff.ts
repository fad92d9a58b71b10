/**
 * The container side of a graceful restart (`nodecri restart`, an in-place re-exec of the
 * daemon: containers stay children of the same pid): what one daemon image hands the next.
 */
import fs from 'node:fs';
import { promisify } from 'node:util';
import type { ContainerContext, Live } from './context';
import { closeFd } from './logs';

/**
 * What a daemon image hands to the next one across its in-place re-exec: per running
 * container, the fds (kept open across the execve) of its FIFO read ends, so that the
 * pipes, and what is still unread in them, live on even if the container exits before the
 * new image has restored it; the write end of its stdin pipe while it is open; a terminal
 * container's pty master (closing it would hang the terminal up: SIGHUP, EIO), and
 * whether its input is still fed (terminalStdin: stdin, and not ended by stdin_once).
 */
export interface ContainerHandoff {
  containers: Record<string, HandedFds>;
}

export interface HandedFds {
  stdout?: number;
  stderr?: number;
  stdin?: number;
  terminal?: number;
  terminalStdin?: boolean;
}

/** At most this much is read from one stream, synchronously, when a handoff stops reading. */
const handoffDrainLimit = 1024 * 1024;

/**
 * Before the daemon re-execs itself (containers stay children of the same pid). First,
 * with the exit watchers still running, every exit already reaped is written down. Then,
 * in one synchronous step, exit watching stops without reaping anything more (an exit from
 * now on stays a zombie for the new image to reap, with its real status) and every log
 * stream stops being read: what the pipe holds now is read into the log, its unterminated
 * line goes out as a P record (the next image reads on from the pipe and closes the line),
 * and the read end is kept open across the execve, so that bytes still unread stay in the
 * pipe even if the container exits before the new image has restored it. A terminal's pty
 * master and an open stdin pipe's write end are kept open the same way (unread: a master
 * is a blocking fd), so that the terminal does not hang up and stdin does not end. Last
 * the records are written out; nothing can reap or read while that is awaited.
 *
 * Returns what the new image's restore() takes; the caller must execve without ever
 * starting exit watching or log reading again.
 */
export async function prepareHandoff(ctx: ContainerContext): Promise<ContainerHandoff> {
  while (ctx.recording.size > 0) await Promise.all([...ctx.recording]);
  // From here to the return of stopReading, nothing is awaited.
  ctx.opts.host.unwatchAllExits();
  const handoff: ContainerHandoff = { containers: {} };
  for (const [id, live] of ctx.live) {
    if (!live.handle) continue;
    const fds = stopReading(ctx, id, live);
    if (Object.keys(fds).length > 0) handoff.containers[id] = fds;
  }
  await Promise.all([...ctx.live.values()].flatMap((l) => (l.log ? [l.log.drain()] : [])));
  return handoff;
}

/** The synchronous part of a handoff for one container's log; returns the fds kept. */
function stopReading(ctx: ContainerContext, id: string, live: Live): HandedFds {
  const kept: HandedFds = {};
  const keep = (fd: number, what: string): number | undefined => {
    try {
      const dup = ctx.opts.host.dupFd(fd);
      ctx.opts.host.keepAcrossExec([dup]);
      return dup;
    } catch (e) {
      ctx.opts.log.warn({ err: e, containerId: id }, `cannot keep ${what} open across the re-exec`);
      return undefined;
    }
  };
  const chunk = Buffer.allocUnsafe(64 * 1024);
  for (const r of live.readers.splice(0)) {
    r.sock.removeAllListeners('data');
    r.sock.removeAllListeners('end');
    r.sock.removeAllListeners('error');
    r.sock.on('error', () => {});
    // The socket reads in flowing mode, so nothing is buffered above the kernel: what it
    // has not read is still in the pipe. Read what is there now (bounded: a busy writer
    // refills it; the rest stays in the pipe for the next image).
    let taken = 0;
    // A pty master is a blocking fd (libuv leaves a master blocking): a read of an empty
    // one would never return. It is not read here: the next image reads on from it.
    while (!r.terminal && taken < handoffDrainLimit) {
      let n: number;
      try {
        n = fs.readSync(r.fd, chunk, 0, chunk.length, null);
      } catch {
        break; // EAGAIN: empty now; EIO: a pty whose slave is closed
      }
      if (n === 0) break;
      taken += n;
      live.log?.take(r.stream, Buffer.from(chunk.subarray(0, n)));
    }
    if (!r.sock.destroyed) {
      if (r.terminal) {
        kept.terminal = keep(r.fd, 'the pty master (the terminal hangs up)');
        if (kept.terminal !== undefined && live.stdin && !live.stdin.destroyed && !live.stdin.writableEnded) kept.terminalStdin = true;
      } else kept[r.stream] = keep(r.fd, 'a log FIFO (the next image opens it again)');
    }
    r.sock.destroy();
  }
  const stdin = live.stdin;
  if (stdin && live.stdinFd != null && !stdin.destroyed && !stdin.writableEnded) kept.stdin = keep(live.stdinFd, "the stdin pipe's write end (the container reads EOF)");
  live.log?.flushPartialsAsP();
  for (const k of Object.keys(kept) as Array<keyof HandedFds>) if (kept[k] === undefined) delete kept[k];
  return kept;
}

const fstat = promisify(fs.fstat);
const stat = promisify(fs.stat);

/**
 * A FIFO read end the previous image handed over (already close-on-exec again), if it is
 * the FIFO at `fifoPath` (same device and inode). Anything else is closed.
 */
export async function takeHandedFifo(fd: number | undefined, fifoPath: string): Promise<number | null> {
  if (fd === undefined) return null;
  try {
    const [a, b] = await Promise.all([fstat(fd), stat(fifoPath)]);
    if (a.isFIFO() && a.dev === b.dev && a.ino === b.ino) return fd;
  } catch {
    // not an open fd, or the FIFO is gone
  }
  closeFd(fd);
  return null;
}

export function closeHanded(fds: HandedFds): void {
  for (const fd of [fds.stdout, fds.stderr, fds.stdin, fds.terminal]) if (typeof fd === 'number') closeFd(fd);
}

/**
 * An fd the previous image handed over that must be a pipe (stdin's write end) or a
 * character device (a pty master); anything else is closed.
 */
export async function takeHandedFd(fd: number | undefined, kind: 'pipe' | 'terminal'): Promise<number | null> {
  if (fd === undefined) return null;
  try {
    const st = await fstat(fd);
    if (kind === 'pipe' ? st.isFIFO() : st.isCharacterDevice()) return fd;
  } catch {
    // not an open fd
  }
  closeFd(fd);
  return null;
}
