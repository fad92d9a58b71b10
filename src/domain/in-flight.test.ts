import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { InFlight } from './in-flight';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('InFlight', { timeout: 10_000 }, () => {
  it('a second call for a name being created joins the first and gets the same id', async () => {
    const f = new InFlight<string>();
    const d = deferred<string>();
    assert.equal(f.join('pod'), null);
    const first = f.start('pod', () => d.promise);
    const joined = f.join('pod');
    assert.ok(joined);
    assert.equal(f.join('other'), null);
    d.resolve('id1');
    assert.equal(await first, 'id1');
    assert.equal(await joined, 'id1');
    assert.equal(f.size, 0);
    assert.equal(f.join('pod'), null);
  });

  it('a failure reaches the joiners too and frees the name', async () => {
    const f = new InFlight<string>();
    const d = deferred<string>();
    const first = f.start('pod', () => d.promise);
    const joined = f.join('pod')!;
    d.reject(new Error('no space'));
    await assert.rejects(first, /no space/);
    await assert.rejects(joined, /no space/);
    assert.equal(f.size, 0);
    assert.equal(await f.start('pod', async () => 'id2'), 'id2');
  });

  it('refuses a second start of a running name', async () => {
    const f = new InFlight<string>();
    const d = deferred<string>();
    const first = f.start('pod', () => d.promise);
    await assert.rejects(
      f.start('pod', async () => 'x'),
      /already being created/,
    );
    d.resolve('id1');
    assert.equal(await first, 'id1');
  });

  it('a bounded join gives up with the error while the creation goes on', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const f = new InFlight<string>({ joinTimeout: { ms: 1000, error: (n) => new Error(`${n} still being created`) } });
      const d = deferred<string>();
      const first = f.start('pod', () => d.promise);
      const joined = f.join('pod')!;
      mock.timers.tick(1000);
      await assert.rejects(joined, /pod still being created/);
      assert.equal(f.size, 1);
      const late = f.join('pod')!;
      d.resolve('id1');
      assert.equal(await first, 'id1');
      assert.equal(await late, 'id1');
    } finally {
      mock.timers.reset();
    }
  });
});
