/**
 * A container's output as the daemon reads it: FIFO read ends (or the pty master) read into
 * the container's CRI log file (cri-log.ts), and ReopenContainerLog.
 *
 * Stdio goes through FIFOs under the container's run dir, which the container opens
 * read-write: it is then a reader of its own output too, so a write never raises SIGPIPE
 * while the daemon is down, and a new daemon simply reopens the FIFOs and reads on from
 * where the pipe buffer stands. That is how containers and their logs outlive the daemon
 * with no helper process. Under nodecri-keeper, the keeper also holds a read end of each
 * FIFO (so the pipe and its buffer live on while no daemon runs) and records the exits of
 * containers that end while none does (src/linux/keeper.ts).
 */
import fs from 'node:fs';
import net from 'node:net';
import tty from 'node:tty';
import { promisify } from 'node:util';
import { failedPrecondition } from '../domain/errors';
import type { ContainerContext, LogReader } from './context';
import { CriLogWriter } from './cri-log';
import type { ContainerRecord } from './model';

/** open(2) for a raw fd, off the event loop (a FIFO opened like this never blocks). */
export const openFd = promisify(fs.open);
export const closeFd = (fd: number) => fs.close(fd, () => {});

/** The container's log writer: drops are counted per container and warned about. */
export function containerLogWriter(ctx: ContainerContext, r: ContainerRecord): CriLogWriter {
  const log = ctx.opts.log.child({ containerId: r.id });
  return new CriLogWriter(r.logPath, {
    onDropped: (d) => ctx.opts.metrics?.containerLogDroppedBytes.inc({ container_id: r.id }, d.textBytes),
    warn: (fields, message) => log.warn(fields, message),
  });
}

export async function reopenLog(ctx: ContainerContext, idOrPrefix: string): Promise<void> {
  const r = ctx.mustGet(idOrPrefix);
  const live = ctx.live.get(r.id);
  if (r.state !== 'CONTAINER_RUNNING' || !live) throw failedPrecondition(`container ${r.id} is not running`);
  await live.log?.reopen();
}

/**
 * A reader of the daemon's end of a process's stdio (the socket owns the fd): a FIFO or pipe
 * read end, or a pty master. A master is a TTY to libuv, which net.Socket refuses; its reads
 * end in EIO once the last slave is closed, which readers take as the end.
 */
export function fdReader(fd: number, terminal: boolean): net.Socket {
  return terminal ? new tty.ReadStream(fd) : new net.Socket({ fd, readable: true, writable: false });
}

/** A reader of one stream into the log (or into nothing, when the container has no log). */
export function attachReader(log: CriLogWriter | null, stream: 'stdout' | 'stderr', fd: number, terminal: boolean): LogReader {
  const sock = fdReader(fd, terminal);
  if (log) log.attach(stream, sock);
  else sock.resume();
  return { stream, fd, sock, terminal };
}
