import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyedMutex, Mutex } from './mutex';

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}
const settle = () => new Promise<void>((r) => setImmediate(r));

describe('Mutex', { timeout: 10_000 }, () => {
  it('runs sections one at a time in call order, a throw releasing like a return', async () => {
    const m = new Mutex();
    const log: string[] = [];
    const g = gate();
    const a = m.run(async () => {
      log.push('a<');
      await g.promise;
      log.push('a>');
      throw new Error('a failed');
    });
    const b = m.run(async () => {
      log.push('b');
      return 'b';
    });
    await settle();
    assert.deepEqual(log, ['a<']);
    g.open();
    await assert.rejects(a, /a failed/);
    assert.equal(await b, 'b');
    assert.deepEqual(log, ['a<', 'a>', 'b']);
  });
});

describe('KeyedMutex', { timeout: 10_000 }, () => {
  it('serialises one key, lets other keys run, and forgets a key nobody holds', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    const g = gate();
    const x1 = m.run('x', async () => {
      log.push('x1');
      await g.promise;
    });
    const x2 = m.run('x', async () => {
      log.push('x2');
    });
    const y = m.run('y', async () => {
      log.push('y');
    });
    await y;
    await settle();
    assert.deepEqual(log, ['x1', 'y']);
    assert.equal(m.size, 1);
    g.open();
    await Promise.all([x1, x2]);
    assert.deepEqual(log, ['x1', 'y', 'x2']);
    assert.equal(m.size, 0);
  });

  it('a section that throws releases its key', async () => {
    const m = new KeyedMutex();
    await assert.rejects(
      m.run('k', async () => Promise.reject(new Error('no'))),
      /no/,
    );
    assert.equal(await m.run('k', async () => 1), 1);
    assert.equal(m.size, 0);
  });
});
