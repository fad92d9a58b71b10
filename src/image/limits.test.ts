import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { defaultConfig } from '../config';
import { ByteLimit, humanBytes, layerLimits, unpackLimit } from './limits';

const MiB = 2 ** 20;

test('the limit is max(ratio x compressed, floor), capped; 0 turns each part off', () => {
  const defaults = layerLimits(defaultConfig().image);
  assert.deepEqual(defaults, { ratio: 100, floor: 512 * MiB, cap: 0 });
  // A 1 GiB-of-zeros bomb is ~1 MiB of gzip: refused by the floor, well before 1 GiB.
  assert.equal(unpackLimit(defaults, MiB)?.bytes, 512 * MiB);
  // A big ordinary layer (3x) is far below its ratio limit.
  assert.equal(unpackLimit(defaults, 1000 * MiB)?.bytes, 100_000 * MiB);
  assert.match(unpackLimit(defaults, 10)?.why ?? '', /^max\(max_layer_ratio = 100 × its 10 compressed bytes, max_layer_ratio_floor = 536870912\)$/);
  assert.deepEqual(unpackLimit({ ratio: 100, floor: 0, cap: 50 }, 10), { bytes: 50, why: 'max_layer_size = 50' });
  assert.equal(unpackLimit({ ratio: 100, floor: 0, cap: 5000 }, 10)?.bytes, 1000);
  assert.deepEqual(unpackLimit({ ratio: 0, floor: 0, cap: 7 }, 10), { bytes: 7, why: 'max_layer_size = 7' });
  assert.equal(unpackLimit({ ratio: 0, floor: 123, cap: 0 }, 10), null);
});

test('sizes read as people write them', () => {
  assert.equal(humanBytes(512 * MiB), '512 MiB');
  assert.equal(humanBytes(104_510_400), '99.7 MiB');
  assert.equal(humanBytes(2 ** 30), '1 GiB');
  assert.equal(humanBytes(1000), '1000 bytes');
});

test('ByteLimit passes up to the limit and fails past it, naming what and the limit', async () => {
  const chunks = () => Readable.from([Buffer.alloc(60), Buffer.alloc(40), Buffer.alloc(1)]);
  const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
  await pipeline(chunks(), new ByteLimit({ bytes: 101, why: 'x' }, 'layer a'), sink());
  await pipeline(chunks(), new ByteLimit(null, 'layer a'), sink());
  await assert.rejects(pipeline(chunks(), new ByteLimit({ bytes: 100, why: 'max_layer_size = 100' }, 'layer a'), sink()), (e: Error & { kind?: string }) => {
    assert.equal(e.kind, 'failed-precondition');
    assert.equal(e.message, 'layer a unpacks to more than 100 bytes (100 bytes), the limit max_layer_size = 100 in [image]: refusing it as a possible decompression bomb');
    return true;
  });
});
