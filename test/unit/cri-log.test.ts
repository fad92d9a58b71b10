/** The CRI log writer: every line written, and reading paused while too much waits. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { CriLogWriter, defaultHighWaterBytes } from '../../src/container/cri-log';

test('a stream is paused while more than the high-water mark waits to be written, and nothing is lost', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-crilog-'));
  try {
    const log = new CriLogWriter(path.join(dir, 'c.log'));
    await log.openFile();
    const source = new PassThrough();
    log.attach('stdout', source);
    let pausedOnce = false;
    source.on('data', () => {
      // runs after the writer's listener has queued the chunk's records
      if (log.pendingBytes > defaultHighWaterBytes) pausedOnce ||= source.isPaused();
    });
    const lines = Array.from({ length: 50_000 }, (_, i) => `line ${i}`);
    source.end(Buffer.from(lines.map((l) => `${l}\n`).join('')));
    await log.ended;
    await log.close();
    assert.ok(pausedOnce, 'the stream was paused while the queue was over the mark');
    const written = fs
      .readFileSync(path.join(dir, 'c.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ').slice(3).join(' '));
    assert.deepEqual(written, lines);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
