import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { CriLogWriter, type LogFile } from './cri-log';

/** An in-memory log file with room for `capacity` bytes: writes past it land short, then fail. */
class SmallFile implements LogFile {
  data = Buffer.alloc(0);
  writes = 0;
  /** while set, writev waits for release() */
  held: Array<() => void> | null = null;
  constructor(public capacity: number) {}
  async writev(buffers: Buffer[]): Promise<{ bytesWritten: number }> {
    this.writes++;
    if (this.held) await new Promise<void>((r) => this.held!.push(r));
    const all = Buffer.concat(buffers);
    const room = this.capacity - this.data.length;
    if (room <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const n = Math.min(room, all.length);
    this.data = Buffer.concat([this.data, all.subarray(0, n)]);
    return { bytesWritten: n };
  }
  async stat() {
    return { size: this.data.length };
  }
  async truncate(len: number) {
    this.data = this.data.subarray(0, len);
  }
  async close() {}
  release() {
    const h = this.held ?? [];
    this.held = null;
    for (const r of h) r();
  }
}

const record = /^\S+ (stdout|stderr) [PF] (.*)$/;

function lines(f: SmallFile): string[] {
  const text = f.data.toString();
  assert.ok(text === '' || text.endsWith('\n'), 'the file ends with a whole record');
  return text.split('\n').filter(Boolean);
}

test('a full disk: only whole records in the file, every dropped byte counted, one warning per interval', async () => {
  const file = new SmallFile(10_000);
  const dropped: number[] = [];
  const warnings: Array<{ droppedRecords: number; droppedBytes: number }> = [];
  const w = new CriLogWriter('/x.log', {
    open: async () => file,
    onDropped: (d) => dropped.push(d.textBytes),
    warn: (fields) => warnings.push(fields),
    warnIntervalMs: 60_000,
  });
  await w.openFile();
  const out = new PassThrough();
  w.attach('stdout', out);
  const line = 'y'.repeat(99);
  let sent = 0;
  for (let i = 0; i < 50; i++) {
    // 20 lines per chunk, so that batches straddle the end of the room
    out.write(`${line}\n`.repeat(20));
    sent += 20;
    await new Promise((r) => setImmediate(r));
  }
  out.end();
  await w.ended;
  await w.close();
  const kept = lines(file);
  for (const l of kept) assert.match(l, record);
  assert.ok(kept.length > 0 && kept.length < sent, `${kept.length} of ${sent} kept`);
  const droppedBytes = dropped.reduce((a, b) => a + b, 0);
  assert.equal(droppedBytes, (sent - kept.length) * line.length);
  assert.deepEqual(w.dropped, { records: sent - kept.length, textBytes: droppedBytes });
  // The first drop is reported at once, the rest (inside the interval) at close.
  assert.equal(warnings.length, 2);
  assert.equal(warnings[0].droppedRecords + warnings[1].droppedRecords, sent - kept.length);
  assert.equal(warnings[0].droppedBytes + warnings[1].droppedBytes, droppedBytes);
});

test('a slow disk: the streams pause above the high-water mark and nothing is lost', async () => {
  const file = new SmallFile(Infinity);
  const w = new CriLogWriter('/x.log', { open: async () => file, highWaterBytes: 4096 });
  await w.openFile();
  const out = new PassThrough();
  w.attach('stdout', out);
  file.held = [];
  const line = 'z'.repeat(199);
  // the first record starts a write that the disk holds; the rest queue up behind it
  let sent = 0;
  for (let i = 0; i < 100 && !out.isPaused(); i++) {
    out.write(`${line}\n`);
    sent++;
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(out.isPaused(), 'the stream is paused while the writer is behind');
  assert.ok(sent > 10 && sent < 100, `${sent} lines before the pause`);
  assert.ok(w.pendingBytes <= 4096 + 300, `${w.pendingBytes} bytes pending`);
  // more while paused: they wait in the stream (the pipe, for a container), not in the writer
  for (let i = 0; i < 10; i++) out.write(`${line}\n`);
  sent += 10;
  assert.ok(out.readableLength >= 10 * 200);
  file.release();
  await w.drain();
  out.end();
  await w.ended;
  await w.close();
  const kept = lines(file);
  assert.equal(kept.length, sent);
  for (const l of kept) assert.equal(record.exec(l)?.[2], line);
  assert.deepEqual(w.dropped, { records: 0, textBytes: 0 });
});

test('a last line without a newline is a P record at the end of its stream, as containerd writes it', async () => {
  const file = new SmallFile(Infinity);
  const w = new CriLogWriter('/x.log', { open: async () => file });
  await w.openFile();
  const out = new PassThrough();
  const err = new PassThrough();
  w.attach('stdout', out);
  w.attach('stderr', err);
  out.write('one\ntw');
  out.end('o');
  err.end('done\n');
  await w.ended;
  await w.close();
  // An F would make kubelet add the newline the container never wrote.
  const records = lines(file).map((l) => l.slice(l.indexOf(' ') + 1));
  assert.deepEqual(records.sort(), ['stderr F done', 'stdout F one', 'stdout P two']);
});
