/**
 * The CRI container log: kubelet's format, one record per line,
 *   <RFC3339Nano timestamp> <stdout|stderr> <P|F> <text>
 * where a line longer than 16 KiB is split into P (partial) records ending with an F
 * (full) one, and a last line the container ended without a newline is a P record. Streams are read on the event loop (libuv pipe handles), records are written
 * through one queued FileHandle so writes never block the loop, and whatever is buffered
 * at the end is written before `closed` resolves, so the last bytes of a container are
 * never lost. ReopenContainerLog swaps the file under the writer (kubelet's rotation).
 *
 * Faults (a full disk, a quota, EIO): the file only ever holds whole records. A write that
 * lands short is cut back to the last whole record, and the records that did not fit are
 * dropped, counted (onDropped) and reported in a warning at most once per container per
 * `warnIntervalMs`. Memory stays bounded: while more than `highWaterBytes` wait to be
 * written, the streams are paused, so a container writing faster than the disk takes
 * blocks on its own pipe (nothing is lost while writes succeed); a write that fails drops
 * its records and reading goes on, so a full disk never blocks a container for good.
 * That is conmon's choice on a write error (drop and keep reading) plus backpressure for
 * a merely slow disk.
 */
import fsp from 'node:fs/promises';
import type { Readable } from 'node:stream';

export type LogStream = 'stdout' | 'stderr';

/** kubelet splits at 16 KiB too; a record never exceeds this many bytes of text. */
export const maxRecordText = 16 * 1024;

/**
 * Record bytes waiting to be written above which the streams are paused. Small, because it
 * is also what a crash of the daemon can lose per container (read, not yet written): the
 * rest waits in the pipe, which the keeper holds open.
 */
export const defaultHighWaterBytes = 64 * 1024;

/** At most one "records dropped" warning per container in this many milliseconds. */
export const defaultWarnIntervalMs = 10_000;

/** RFC3339 with nanoseconds, in UTC, from the wall clock and the monotonic sub-ms. */
export function rfc3339Nano(date = new Date(), subMillisNanos = Math.floor((performance.now() % 1) * 1e6)): string {
  const iso = date.toISOString(); // 2026-11-27T11:38:06.735Z
  const nanos = String(date.getUTCMilliseconds() * 1e6 + subMillisNanos).padStart(9, '0');
  return `${iso.slice(0, 19)}.${nanos}Z`;
}

/** What the writer needs of an open log file (a FileHandle; a fake in unit tests). */
export interface LogFile {
  writev(buffers: Buffer[]): Promise<{ bytesWritten: number }>;
  stat(): Promise<{ size: number }>;
  truncate(len: number): Promise<void>;
  close(): Promise<void>;
}

/** Records that could not be written: how many, their text bytes, and why. */
export interface DroppedRecords {
  records: number;
  /** the container's output bytes in them (record text, without the CRI header) */
  textBytes: number;
  error: Error;
}

export interface CriLogWriterOptions {
  /** called for every batch of records dropped (a metric counts them) */
  onDropped?: (d: DroppedRecords) => void;
  /** the rate-limited warning, with the totals since the last one */
  warn?: (fields: { droppedRecords: number; droppedBytes: number; error: string }, message: string) => void;
  highWaterBytes?: number;
  warnIntervalMs?: number;
  /** opens the log for appending (fsp.open by default) */
  open?: (path: string) => Promise<LogFile>;
}

/** One record ready to write, with the container's bytes it carries. */
interface QueuedRecord {
  bytes: Buffer;
  textBytes: number;
}

const openAppend = (p: string): Promise<LogFile> => fsp.open(p, 'a', 0o640);

export class CriLogWriter {
  private file: LogFile | null = null;
  private queue: QueuedRecord[] = [];
  /** bytes queued plus bytes in the write under way: what backpressure looks at */
  private pendingTotal = 0;
  private writing: Promise<void> | null = null;
  private readonly partial: Record<LogStream, Buffer[]> = { stdout: [], stderr: [] };
  private readonly partialLen: Record<LogStream, number> = { stdout: 0, stderr: 0 };
  private readonly readables = new Set<Readable>();
  private paused = false;
  private open = 0;
  private endedResolve!: () => void;
  /** Resolves once every attached stream ended and everything is written. */
  readonly ended: Promise<void>;
  private failure: Error | null = null;
  private readonly highWater: number;
  private readonly warnInterval: number;
  private readonly openFn: (path: string) => Promise<LogFile>;
  /** drops since the last warning, and when that was */
  private unreported = { records: 0, textBytes: 0, error: null as Error | null };
  private lastWarnAt = -Infinity;
  /** every drop since the writer was made */
  readonly dropped = { records: 0, textBytes: 0 };

  constructor(
    readonly path: string,
    private readonly opts: CriLogWriterOptions = {},
  ) {
    this.ended = new Promise((r) => (this.endedResolve = r));
    this.highWater = opts.highWaterBytes ?? defaultHighWaterBytes;
    this.warnInterval = opts.warnIntervalMs ?? defaultWarnIntervalMs;
    this.openFn = opts.open ?? openAppend;
  }

  async openFile(): Promise<void> {
    this.file = await this.openFn(this.path);
  }

  /** Reads `readable` to its end, writing its lines as `stream` records. */
  attach(stream: LogStream, readable: Readable): void {
    this.open++;
    this.readables.add(readable);
    readable.on('data', (chunk: Buffer) => this.consume(stream, chunk));
    if (this.paused) readable.pause();
    const done = () => {
      readable.removeAllListeners('data');
      this.readables.delete(readable);
      this.flushPartial(stream);
      if (--this.open === 0) void this.drain().then(() => this.endedResolve());
    };
    readable.once('end', done);
    readable.once('error', done);
  }

  /** Bytes of `stream` read by the caller rather than an attached stream (a handoff's last read). */
  take(stream: LogStream, chunk: Buffer): void {
    this.consume(stream, chunk);
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
          // Copied: a slice would keep the whole chunk alive while the line waits.
          this.partial[stream].push(Buffer.from(piece));
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

  /**
   * At the end of a stream, an unterminated last line is a P record, as containerd writes
   * it: an F would make kubelet (and `kubectl logs`) add a newline the container never wrote.
   */
  private flushPartial(stream: LogStream): void {
    if (this.partialLen[stream] === 0) return;
    this.emit(rfc3339Nano(), stream, 'P', Buffer.concat(this.partial[stream]));
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

  /** Queues one record as a single buffer, so that a write can be cut at its boundary. */
  private emit(ts: string, stream: LogStream, tag: 'P' | 'F', text: Buffer): void {
    const head = `${ts} ${stream} ${tag} `;
    const bytes = Buffer.allocUnsafe(head.length + text.length + 1);
    bytes.write(head, 0, 'latin1');
    text.copy(bytes, head.length);
    bytes[bytes.length - 1] = 0x0a;
    this.queue.push({ bytes, textBytes: text.length });
    this.pendingTotal += bytes.length;
    if (!this.paused && this.pendingTotal > this.highWater) this.setPaused(true);
    if (!this.writing) this.writing = this.writeLoop();
  }

  private setPaused(paused: boolean): void {
    this.paused = paused;
    for (const r of this.readables) {
      if (paused) r.pause();
      else r.resume();
    }
  }

  private async writeLoop(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        await this.writeBatch(batch);
        for (const r of batch) this.pendingTotal -= r.bytes.length;
        if (this.paused && this.pendingTotal <= this.highWater) this.setPaused(false);
      }
    } finally {
      this.writing = null;
    }
  }

  /**
   * One writev for the batch. libuv goes on after a short write until the kernel refuses,
   * so fewer bytes than asked means the rest did not fit (the errno is not passed up); an
   * exception means nothing of this call landed.
   */
  private async writeBatch(batch: QueuedRecord[]): Promise<void> {
    const total = batch.reduce((n, r) => n + r.bytes.length, 0);
    let written = 0;
    let error: Error | null = null;
    try {
      if (!this.file) await this.openFile();
      written = (await this.file!.writev(batch.map((r) => r.bytes))).bytesWritten;
    } catch (e) {
      error = e as Error;
    }
    if (written >= total) return;
    let whole = 0;
    let kept = 0;
    while (kept < batch.length && whole + batch[kept].bytes.length <= written) whole += batch[kept++].bytes.length;
    if (written > whole) {
      // Part of a record landed: cut the file back to the end of the last whole one.
      try {
        const { size } = await this.file!.stat();
        await this.file!.truncate(size - (written - whole));
      } catch (e) {
        error ??= e as Error;
      }
    }
    error ??= Object.assign(new Error(`write ${this.path}: short write (${written} of ${total} bytes): no space left?`), { code: 'ENOSPC' });
    this.drop(batch.slice(kept), error);
  }

  private drop(records: QueuedRecord[], error: Error): void {
    if (records.length === 0) return;
    const textBytes = records.reduce((n, r) => n + r.textBytes, 0);
    this.failure ??= error;
    this.dropped.records += records.length;
    this.dropped.textBytes += textBytes;
    this.unreported.records += records.length;
    this.unreported.textBytes += textBytes;
    this.unreported.error = error;
    this.opts.onDropped?.({ records: records.length, textBytes, error });
    if (performance.now() - this.lastWarnAt >= this.warnInterval) this.reportDrops();
  }

  /** The warning for the drops not reported yet (rate-limited by `drop`, forced at close). */
  private reportDrops(): void {
    const u = this.unreported;
    if (u.records === 0) return;
    this.lastWarnAt = performance.now();
    this.opts.warn?.(
      { droppedRecords: u.records, droppedBytes: u.textBytes, error: u.error?.message ?? '' },
      `container log ${this.path} cannot be written (${(u.error as NodeJS.ErrnoException | null)?.code ?? 'error'}): dropped ${u.records} records, ${u.textBytes} bytes of output`,
    );
    this.unreported = { records: 0, textBytes: 0, error: null };
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
    this.file = await this.openFn(this.path);
    await old?.close();
  }

  async close(): Promise<void> {
    await this.drain();
    this.reportDrops();
    await this.file?.close();
    this.file = null;
  }

  get pendingBytes(): number {
    return this.pendingTotal;
  }
}
