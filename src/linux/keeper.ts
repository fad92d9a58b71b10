/**
 * The daemon's side of nodecri-keeper (native/keeper/keeper.cc), the one process per node
 * above the daemon that keeps, while no daemon runs, what a container leaves behind:
 *
 * - exit statuses. The keeper is the child subreaper above the daemon (the worker): when
 *   a worker dies, its containers become the keeper's children, and the keeper writes
 *   each one's status to `<runroot>/exits/<pid>-<starttime>` before it reaps it, then
 *   tells the current worker. A worker that finds a RUNNING container gone reads its
 *   record; one that adopts a running container that is now the keeper's child (its own
 *   waitid gets ECHILD) waits for the record when the pidfd says it exited.
 * - the last output. The worker sends the keeper the read end of each stdout/stderr FIFO
 *   (SCM_RIGHTS); the keeper holds it, never reading, so the pipe and the bytes in its
 *   buffer outlive a dead worker, and the next one reopens the FIFO path and reads on.
 *   Only what a dead worker had read but not yet written to the log is lost.
 *
 * Pseudo-terminals are not kept: a pty master dies with the worker that held it.
 *
 * Frames on the socket: u32 type, u32 payload length (little-endian), payload. The worker
 * is the only writer on its end (sendToKeeper, synchronous and non-blocking), the keeper on
 * the other.
 */
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sendToKeeper } from '../native/keeper';
import { keepAcrossExec, type ExitStatus } from '../native/process';
import type { Logger } from '../obs/logger';
import { writeFileAtomic } from '../state/atomic-file';

/** Names the worker's end of the keeper socket; set by the keeper, absent without one. */
export const keeperFdVar = 'NODECRI_KEEPER_FD';

const frame = { hold: 1, drop: 2, syncBegin: 3, syncEnd: 4, ready: 5, exit: 101 } as const;

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
  private readonly sock: net.Socket;
  private pending: Buffer = Buffer.alloc(0);
  /** exits of containers being watched (or restored): their records are kept until forgotten */
  private readonly expected = new Map<string, Waiter>();
  /** until restore ends, notes for keys nobody expects yet are kept too */
  private readonly early = new Map<string, ExitStatus>();
  private restoreDone = false;
  private sendFailed = false;

  private constructor(
    private readonly fd: number,
    private readonly dir: string,
    private readonly log: Logger,
  ) {
    // Not for the daemon's children (CNI plugins); handOver keeps it across its own execve.
    keepAcrossExec([fd], false);
    this.sock = new net.Socket({ fd, readable: true, writable: false });
    this.sock.on('data', (chunk: Buffer) => this.consume(chunk));
    this.sock.on('error', (e) => this.log.error({ err: e }, 'keeper socket failed'));
    this.sock.unref();
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
    keepAcrossExec([this.fd]);
    return { [keeperFdVar]: String(this.fd) };
  }

  private send(type: number, payload: string, fd: number | null = null): void {
    const body = Buffer.from(payload);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(type, 0);
    head.writeUInt32LE(body.length, 4);
    try {
      sendToKeeper(this.fd, Buffer.concat([head, body]), fd);
    } catch (e) {
      // The keeper is gone or wedged: this daemon goes on as one without a keeper would.
      if (!this.sendFailed) this.log.error({ err: e }, 'cannot reach the keeper: exits and FIFO buffers are not kept across a crash');
      this.sendFailed = true;
    }
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

  private consume(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 8) {
      const type = this.pending.readUInt32LE(0);
      const len = this.pending.readUInt32LE(4);
      if (this.pending.length < 8 + len) break;
      const body = this.pending.subarray(8, 8 + len);
      this.pending = this.pending.subarray(8 + len);
      if (type === frame.exit && len >= 24) {
        const pid = body.readInt32LE(0);
        const exited = body.readInt32LE(4) === 1;
        const value = body.readInt32LE(8);
        const startTime = body.readBigUInt64LE(16).toString();
        this.noted(recordKey(pid, startTime), exited ? statusOf(value, null) : statusOf(null, value));
      }
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

  /** The record of an exit the keeper (or a daemon before) wrote, if there is one. */
  async recordedExit(pid: number, startTime: string): Promise<ExitStatus | null> {
    const key = recordKey(pid, startTime);
    this.waiter(key);
    const early = this.expected.get(key);
    try {
      const r = JSON.parse(await fsp.readFile(path.join(this.dir, key), 'utf8')) as ExitRecordFile;
      const st = statusOf(r.exitCode, r.signal);
      if (early) this.settle(early, st);
      return st;
    } catch {
      return null;
    }
  }

  /**
   * Registers the exit of a process as expected (before restore ends), so that the keeper's
   * note for it is kept whenever it comes.
   */
  expect(pid: number, startTime: string): void {
    this.waiter(recordKey(pid, startTime));
  }

  /**
   * The exit of a process that is the keeper's child: from the keeper's note, or from the
   * record it wrote before this daemon listened. The record is written before the reap
   * and the note after it, so one of the two always comes.
   */
  async exitOf(pid: number, startTime: string): Promise<ExitStatus> {
    const w = this.waiter(recordKey(pid, startTime));
    const recorded = await this.recordedExit(pid, startTime);
    return recorded ?? w.promise;
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
    // (A dot name is a record the keeper is writing right now.)
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
