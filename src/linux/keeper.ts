/**
 * The daemon's side of nodecri-keeper (native/keeper/keeper.cc), the one process per node
 * above the daemon that keeps, while no daemon runs, what a container leaves behind:
 *
 * - exit statuses. The keeper is the child subreaper above the daemon (the worker): when
 *   a worker dies, its containers become the keeper's children. The worker registers each
 *   container's pid and start time with the keeper (watch: at start, and again on restore);
 *   for those the keeper writes the status to `<runroot>/exits/<pid>-<starttime>` before it
 *   reaps it, then tells the current worker (a note). A worker that finds a RUNNING
 *   container gone reads its record; one that adopts a running container that is now the
 *   keeper's child (its own waitid gets ECHILD) waits, when the pidfd says it exited, for
 *   the note or the record, whichever comes first.
 * - the last output. The worker sends the keeper the read end of each stdout/stderr FIFO
 *   (SCM_RIGHTS); the keeper holds it, never reading, so the pipe and the bytes in its
 *   buffer outlive a dead worker, and the next one reopens the FIFO path and reads on.
 *   Only what a dead worker had read but not yet written to the log is lost.
 *
 * Pseudo-terminals are not kept: a pty master dies with the worker that held it.
 *
 * The socket is SOCK_SEQPACKET: each message is one frame (u32 type, u32 payload length,
 * little-endian, then the payload) with its fd, if any, attached. The worker is the only
 * writer on its end (sendToKeeper, non-blocking; what the socket does not take yet waits in
 * a bounded queue, in order), the keeper on the other. The worker reads it natively
 * (watchKeeper), never through a net.Socket, which would close the fd under the sender.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sendToKeeper, watchKeeper } from '../native/keeper';
import { dupFd, keepAcrossExec, type ExitStatus } from '../native/process';
import type { Logger } from '../obs/logger';
import { writeFileAtomic } from '../state/atomic-file';

/** Names the worker's end of the keeper socket; set by the keeper, absent without one. */
export const keeperFdVar = 'NODECRI_KEEPER_FD';

const frame = { hold: 1, drop: 2, syncBegin: 3, syncEnd: 4, ready: 5, watch: 6, unwatch: 7, exit: 101 } as const;

/** Frames waiting for the socket to take them: beyond this many the keeper is wedged. */
const maxQueuedFrames = 10_000;

/** Where the keeper writes exit records. */
export function exitsDir(runroot: string): string {
  return path.join(runroot, 'exits');
}

function recordKey(pid: number, startTime: string): string {
  return `${pid}-${startTime}`;
}

interface ExitRecordFile {
  pid: number;
  startTime: string;
  exitCode: number | null;
  /** the signal number */
  signal: number | null;
}

function signalName(n: number): NodeJS.Signals | null {
  for (const [name, num] of Object.entries(os.constants.signals)) if (num === n) return name as NodeJS.Signals;
  return null;
}

function statusOf(exitCode: number | null, signal: number | null): ExitStatus {
  return { exitCode, signal: signal === null ? null : signalName(signal) };
}

interface Waiter {
  promise: Promise<ExitStatus>;
  resolve: (st: ExitStatus) => void;
  settled: boolean;
}

export class KeeperLink {
  private readonly reader: { wantWritable(on: boolean): void; close(): void };
  /** exits of containers being watched (or restored): their records are kept until forgotten */
  private readonly expected = new Map<string, Waiter>();
  /**
   * Until restore ends, notes for keys nobody expects yet are kept too. Bounded: the keeper
   * sends notes only for processes a worker registered (containers).
   */
  private readonly early = new Map<string, ExitStatus>();
  private restoreDone = false;
  /** the keeper closed its end or a send failed: nothing is sent any more */
  private dead = false;
  /** frames the socket did not take yet, each with a dup of its fd (closed once sent) */
  private readonly queue: Array<{ frame: Buffer; fd: number | null }> = [];
  /** exitOf waits that re-read their record when the link dies */
  private readonly onDeath = new Set<() => void>();

  private constructor(
    private readonly fd: number,
    private readonly dir: string,
    private readonly log: Logger,
  ) {
    // Not for the daemon's children (CNI plugins); handOver keeps it across its own execve.
    keepAcrossExec([fd], false);
    this.reader = watchKeeper(
      fd,
      (f) => (f === null ? this.died('the keeper closed its socket') : this.consume(f)),
      () => this.flush(),
    );
  }

  /** The link to the keeper this daemon runs under, or null when it runs without one. */
  static fromEnv(runroot: string, log: Logger): KeeperLink | null {
    const v = process.env[keeperFdVar];
    delete process.env[keeperFdVar];
    if (v === undefined || !/^\d+$/.test(v)) return null;
    return new KeeperLink(Number(v), exitsDir(runroot), log);
  }

  /** The env entry a re-exec'd daemon image needs; clears FD_CLOEXEC on the socket. */
  keepAcrossExec(): Record<string, string> {
    this.flush(); // what waits in the queue would not survive the execve
    keepAcrossExec([this.fd]);
    return { [keeperFdVar]: String(this.fd) };
  }

  /** The keeper is gone (or wedged): this daemon goes on as one without a keeper would. */
  private died(why: string, err?: unknown): void {
    if (this.dead) return;
    this.dead = true;
    this.log.error({ err }, `${why}: exits and FIFO buffers are not kept across a crash`);
    this.reader.close();
    for (const q of this.queue.splice(0)) if (q.fd !== null) fs.closeSync(q.fd);
    for (const f of [...this.onDeath]) f();
  }

  private send(type: number, payload: string, fd: number | null = null): void {
    if (this.dead) return;
    const body = Buffer.from(payload);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(type, 0);
    head.writeUInt32LE(body.length, 4);
    const msg = Buffer.concat([head, body]);
    if (this.queue.length === 0 && this.trySend(msg, fd)) return;
    if (this.dead) return;
    if (this.queue.length >= maxQueuedFrames) {
      this.died(`the keeper took none of the last ${maxQueuedFrames} frames`);
      return;
    }
    // The fd may be closed by its owner before the frame goes: the queue holds its own.
    this.queue.push({ frame: msg, fd: fd === null ? null : dupFd(fd) });
    this.reader.wantWritable(true);
  }

  /** Sends one frame now; false when the socket is full (EAGAIN). */
  private trySend(msg: Buffer, fd: number | null): boolean {
    try {
      sendToKeeper(this.fd, msg, fd);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') this.died('cannot reach the keeper', e);
      return false;
    }
  }

  private flush(): void {
    while (this.queue.length > 0 && !this.dead) {
      const q = this.queue[0];
      if (!this.trySend(q.frame, q.fd)) return;
      this.queue.shift();
      if (q.fd !== null) fs.closeSync(q.fd);
    }
    if (!this.dead) this.reader.wantWritable(false);
  }

  /** Stops reading the socket (which stays open: it is not this object's to close). */
  close(): void {
    if (!this.dead) this.reader.close();
    this.dead = true;
  }

  /** The keeper holds `fd` (a FIFO read end) for `containerId`'s `stream`, replacing any. */
  hold(containerId: string, stream: 'stdout' | 'stderr', fd: number): void {
    this.send(frame.hold, `${containerId}/${stream}`, fd);
  }

  /** The keeper closes what it holds for the container (its log is drained, or it is gone). */
  drop(containerId: string): void {
    this.send(frame.drop, containerId);
  }

  /** Restore begins: what the keeper holds and is not held again by syncEnd is closed then. */
  syncBegin(): void {
    this.send(frame.syncBegin, '');
  }

  syncEnd(): void {
    this.send(frame.syncEnd, '');
  }

  /** The daemon serves: from now on the keeper restarts it when it dies. */
  ready(): void {
    this.send(frame.ready, '');
  }

  /** The process `pid` that started at `startTime` is a container: the keeper records its exit. */
  watch(pid: number, startTime: string): void {
    this.send(frame.watch, `${pid} ${startTime}`);
  }

  /** One message from the keeper: one frame. */
  private consume(msg: Buffer): void {
    if (msg.length < 8) return;
    const type = msg.readUInt32LE(0);
    const len = msg.readUInt32LE(4);
    if (msg.length !== 8 + len) return;
    const body = msg.subarray(8);
    if (type === frame.exit && len >= 24) {
      const pid = body.readInt32LE(0);
      const exited = body.readInt32LE(4) === 1;
      const value = body.readInt32LE(8);
      const startTime = body.readBigUInt64LE(16).toString();
      this.noted(recordKey(pid, startTime), exited ? statusOf(value, null) : statusOf(null, value));
    }
  }

  private noted(key: string, st: ExitStatus): void {
    const w = this.expected.get(key);
    if (w) {
      this.settle(w, st);
    } else if (!this.restoreDone) {
      this.early.set(key, st);
    } else {
      // A process that was no container of ours (a pause process, an exec's leftover).
      void fsp.rm(path.join(this.dir, key), { force: true });
    }
  }

  private settle(w: Waiter, st: ExitStatus): void {
    if (w.settled) return;
    w.settled = true;
    w.resolve(st);
  }

  private waiter(key: string): Waiter {
    let w = this.expected.get(key);
    if (!w) {
      let resolve!: (st: ExitStatus) => void;
      const promise = new Promise<ExitStatus>((r) => (resolve = r));
      w = { promise, resolve, settled: false };
      this.expected.set(key, w);
      const early = this.early.get(key);
      if (early) {
        this.early.delete(key);
        this.settle(w, early);
      }
    }
    return w;
  }

  private async readRecord(key: string): Promise<ExitStatus | null> {
    try {
      const r = JSON.parse(await fsp.readFile(path.join(this.dir, key), 'utf8')) as ExitRecordFile;
      return statusOf(r.exitCode, r.signal);
    } catch {
      return null;
    }
  }

  /** The record of an exit the keeper (or a daemon before) wrote, if there is one. */
  async recordedExit(pid: number, startTime: string): Promise<ExitStatus | null> {
    const key = recordKey(pid, startTime);
    const w = this.waiter(key);
    const st = await this.readRecord(key);
    if (st) this.settle(w, st);
    return st;
  }

  /**
   * Registers the exit of a process as expected (before restore ends), so that the keeper's
   * note for it is kept whenever it comes.
   */
  expect(pid: number, startTime: string): void {
    this.waiter(recordKey(pid, startTime));
    this.watch(pid, startTime);
  }

  /**
   * The exit of a process that is the keeper's child: from the keeper's note, or from the
   * record it wrote (before this daemon listened, or with a note that never came). Either
   * settles it: the record is looked for now, on every change in the exits directory, and
   * when the link to the keeper dies.
   */
  async exitOf(pid: number, startTime: string): Promise<ExitStatus> {
    const key = recordKey(pid, startTime);
    const w = this.waiter(key);
    if (w.settled) return w.promise;
    const look = () => {
      void this.readRecord(key).then((st) => {
        if (st) this.settle(w, st);
      });
    };
    let watcher: fs.FSWatcher | null = null;
    try {
      // Watched before the first look: a record renamed in between is seen either way.
      await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
      watcher = fs.watch(this.dir, look);
      watcher.on('error', (e) => this.log.warn({ err: e }, 'cannot watch the exit records'));
    } catch (e) {
      this.log.warn({ err: e }, 'cannot watch the exit records');
    }
    this.onDeath.add(look);
    try {
      look();
      return await w.promise;
    } finally {
      watcher?.close();
      this.onDeath.delete(look);
    }
  }

  /**
   * Writes an exit this daemon reaped itself, before it drains the log and persists the
   * container: a crash in between still finds the status.
   */
  async record(pid: number, startTime: string, st: ExitStatus): Promise<void> {
    const body: ExitRecordFile = { pid, startTime, exitCode: st.exitCode, signal: st.signal === null ? null : os.constants.signals[st.signal] };
    this.waiter(recordKey(pid, startTime));
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(path.join(this.dir, recordKey(pid, startTime)), `${JSON.stringify(body)}\n`, 0o600, false);
  }

  /** The container record holds the exit now: its exit record goes. */
  async forget(pid: number, startTime: string): Promise<void> {
    const key = recordKey(pid, startTime);
    this.expected.delete(key);
    this.send(frame.unwatch, `${pid} ${startTime}`);
    await fsp.rm(path.join(this.dir, key), { force: true });
  }

  /**
   * Restore is over: records nobody expects (processes that were no containers, or
   * containers removed since) are deleted, and so are later notes for such processes.
   */
  async restored(): Promise<void> {
    this.restoreDone = true;
    this.early.clear();
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch {
      return;
    }
    // (A dot name is a record being written right now; the keeper removes stale ones at its
    // start, when no writer runs.)
    const stale = names.filter((n) => !n.startsWith('.') && !this.expected.has(n));
    await Promise.all(stale.map((n) => fsp.rm(path.join(this.dir, n), { force: true })));
    if (stale.length > 0) this.log.debug({ records: stale.length }, 'exit records of no container removed');
  }

  /**
   * Whether the process `pid` that started at `startTime` is the keeper's child, so that the
   * keeper will record its exit (it stays its child until then: the keeper never dies alone).
   */
  async isKeeperChild(pid: number, startTime: string): Promise<boolean> {
    try {
      const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(fields[1]) === process.ppid && fields[19] === startTime;
    } catch {
      return false;
    }
  }
}
