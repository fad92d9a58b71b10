/**
 * The CRI container log: kubelet's format, one record per line,
 *   <RFC3339Nano timestamp> <stdout|stderr> <P|F> <text>
 * where a line longer than 16 KiB is split into P (partial) records ending with an F
 * (full) one. Streams are read on the event loop (libuv pipe handles), records are written
 * through one queued FileHandle so writes never block the loop, and whatever is buffered
 * at the end is written before `closed` resolves, so the last bytes of a container are
 * never lost. ReopenContainerLog swaps the file under the writer (kubelet's rotation).
 *
 * Reading stops while more than `queueHighWater` bytes wait to be written (the container
 * then waits on a full pipe, as it would under conmon): what a crash of the daemon can lose,
 * read but not yet written, stays bounded instead of growing with a slow disk.
 */
import fsp, { type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

export type LogStream = 'stdout' | 'stderr';

/** kubelet splits at 16 KiB too; a record never exceeds this many bytes of text. */
export const maxRecordText = 16 * 1024;

/** Queued bytes beyond which the streams are paused until the queue is written. */
export const queueHighWater = 64 * 1024;

/** RFC3339 with nanoseconds, in UTC, from the wall clock and the monotonic sub-ms. */
export function rfc3339Nano(date = new Date(), subMillisNanos = Math.floor((performance.now() % 1) * 1e6)): string {
  const iso = date.toISOString(); // 2026-11-27T11:38:06.735Z
  const nanos = String(date.getUTCMilliseconds() * 1e6 + subMillisNanos).padStart(9, '0');
  return `${iso.slice(0, 19)}.${nanos}Z`;
}

export class CriLogWriter {
  private file: FileHandle | null = null;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private writing: Promise<void> | null = null;
  private readonly partial: Record<LogStream, Buffer[]> = { stdout: [], stderr: [] };
  private readonly partialLen: Record<LogStream, number> = { stdout: 0, stderr: 0 };
  private open = 0;
  private readonly sources = new Set<Readable>();
  private paused = false;
  private endedResolve!: () => void;
  /** Resolves once every attached stream ended and everything is written. */
  readonly ended: Promise<void>;
  private failure: Error | null = null;

  constructor(readonly path: string) {
    this.ended = new Promise((r) => (this.endedResolve = r));
  }

  async openFile(): Promise<void> {
    this.file = await fsp.open(this.path, 'a', 0o640);
  }

  /** Reads `readable` to its end, writing its lines as `stream` records. */
  attach(stream: LogStream, readable: Readable): void {
    this.open++;
    this.sources.add(readable);
    readable.on('data', (chunk: Buffer) => this.consume(stream, chunk));
    const done = () => {
      this.sources.delete(readable);
      readable.removeAllListeners('data');
      this.flushPartial(stream);
      if (--this.open === 0) void this.drain().then(() => this.endedResolve());
    };
    readable.once('end', done);
    readable.once('error', done);
  }

  /** Splits a chunk into records; the timestamp is when the bytes arrived. */
  private consume(stream: LogStream, chunk: Buffer): void {
    const ts = rfc3339Nano();
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      let piece = chunk.subarray(start, end);
      // A line over the limit goes out in P records of exactly the limit.
      while (this.partialLen[stream] + piece.length > maxRecordText) {
        const room = maxRecordText - this.partialLen[stream];
        this.partial[stream].push(piece.subarray(0, room));
        this.emit(ts, stream, 'P', Buffer.concat(this.partial[stream]));
        this.partial[stream] = [];
        this.partialLen[stream] = 0;
        piece = piece.subarray(room);
      }
      if (nl === -1) {
        if (piece.length > 0) {
          this.partial[stream].push(piece);
          this.partialLen[stream] += piece.length;
        }
        return;
      }
      this.partial[stream].push(piece);
      this.emit(ts, stream, 'F', Buffer.concat(this.partial[stream]));
      this.partial[stream] = [];
      this.partialLen[stream] = 0;
      start = nl + 1;
    }
  }

  /** At the end of a stream, an unterminated last line is still a whole line. */
  private flushPartial(stream: LogStream): void {
    if (this.partialLen[stream] === 0) return;
    this.emit(rfc3339Nano(), stream, 'F', Buffer.concat(this.partial[stream]));
    this.partial[stream] = [];
    this.partialLen[stream] = 0;
  }

  /**
   * Writes what is buffered but unterminated as P records, for a handover: the next
   * daemon continues the line and its F record closes it.
   */
  flushPartialsAsP(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partialLen[stream] === 0) continue;
      this.emit(rfc3339Nano(), stream, 'P', Buffer.concat(this.partial[stream]));
      this.partial[stream] = [];
      this.partialLen[stream] = 0;
    }
  }

  private emit(ts: string, stream: LogStream, tag: 'P' | 'F', text: Buffer): void {
    const head = Buffer.from(`${ts} ${stream} ${tag} `);
    this.queue.push(head, text, Buffer.from('\n'));
    this.queuedBytes += head.length + text.length + 1;
    if (!this.paused && this.queuedBytes > queueHighWater) {
      this.paused = true;
      for (const s of this.sources) s.pause();
    }
    if (!this.writing) this.writing = this.writeLoop();
  }

  private resumeIfRoom(): void {
    if (!this.paused || this.queuedBytes > queueHighWater) return;
    this.paused = false;
    for (const s of this.sources) s.resume();
  }

  private async writeLoop(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        this.queuedBytes = 0;
        if (!this.file) await this.openFile();
        await this.file!.writev(batch);
        this.resumeIfRoom();
      }
    } catch (e) {
      // The log cannot be written (disk full, dir removed): keep reading so the container
      // never blocks on a full pipe, drop the records, and report once.
      this.failure ??= e as Error;
      this.queue = [];
      this.queuedBytes = 0;
    } finally {
      this.writing = null;
      this.resumeIfRoom();
    }
  }

  /** Waits for every queued record to be written. */
  async drain(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** The first write error, if any. */
  get error(): Error | null {
    return this.failure;
  }

  /** Reopens the log path (after kubelet renamed the file away). */
  async reopen(): Promise<void> {
    await this.drain();
    const old = this.file;
    this.file = await fsp.open(this.path, 'a', 0o640);
    await old?.close();
  }

  async close(): Promise<void> {
    await this.drain();
    await this.file?.close();
    this.file = null;
  }

  get pendingBytes(): number {
    return this.queuedBytes;
  }
}
