import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { unpackLayerStream } from './layer-stream';
import { TAR_END, tarHeader } from './tar';

const MiB = 2 ** 20;
const MEMBER = 16 * MiB;

test('a gzip bomb stops as it streams: the source is read only a little way past the limit', async () => {
  // 16 GiB of zeros as 1024 gzip members of 16 MiB each (~16 KiB apiece), never in memory.
  const zeros = 16 * 1024 * MiB;
  const member = zlib.gzipSync(Buffer.alloc(MEMBER), { level: 9 });
  const head = zlib.gzipSync(tarHeader({ name: 'zeros', type: 'file', size: zeros }));
  const members = zeros / MEMBER;
  let yielded = 0;
  const source = Readable.from(
    (async function* () {
      yield head;
      for (let i = 0; i < members; i++) {
        yielded++;
        yield member;
      }
      yield zlib.gzipSync(TAR_END);
    })(),
  );
  const compressed = head.length + members * member.length + zlib.gzipSync(TAR_END).length;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-bomb-'));
  try {
    await assert.rejects(
      unpackLayerStream(source, { digest: null, size: compressed, diffId: `sha256:${createHash('sha256').update('unused').digest('hex')}`, what: 'layer L' }, dir, {
        signal: new AbortController().signal,
        limits: { ratio: 2, floor: 8 * MiB, cap: 0 },
      }),
      new RegExp(`^RuntimeError: layer L unpacks to more than ${2 * compressed} bytes .*max_layer_ratio = 2 × its ${compressed} compressed bytes`),
    );
    // The limit is ~32 MiB of the 16 GiB: the rest of the blob is never read nor inflated.
    assert.ok(yielded < members / 8, `read ${yielded} of ${members} members`);
    assert.ok(fs.statSync(path.join(dir, 'zeros')).size <= 2 * compressed, 'no more than the limit was written');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
