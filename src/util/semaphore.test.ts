import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Semaphore } from './semaphore';

/** A promise with its resolve, for sections the test ends when it chooses. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}
const settle = () => new Promise<void>((r) => setImmediate(r));

describe('Semaphore', { timeout: 10_000 }, () => {
  it('lets at most max hold at once and serves waiters in arrival order', async () => {
    const s = new Semaphore(2);
    const order: number[] = [];
    const gates = [gate(), gate(), gate(), gate()];
    const runs = gates.map((g, i) =>
      s.run(async () => {
        order.push(i);
        await g.promise;
      }),
    );
    await settle();
    assert.deepEqual(order, [0, 1]);
    assert.equal(s.holders, 2);
    assert.equal(s.waiters, 2);
    gates[1]!.open();
    await settle();
    assert.deepEqual(order, [0, 1, 2]);
    gates[0]!.open();
    gates[2]!.open();
    gates[3]!.open();
    await Promise.all(runs);
    assert.deepEqual(order, [0, 1, 2, 3]);
    assert.equal(s.holders, 0);
  });

  it('hands a released slot to the first waiter, not to a newcomer', async () => {
    const s = new Semaphore(1);
    const release = await s.acquire();
    const got: string[] = [];
    const waiter = s.acquire().then((r) => (got.push('waiter'), r));
    release();
    const newcomer = s.acquire().then((r) => (got.push('newcomer'), r));
    (await waiter)();
    (await newcomer)();
    assert.deepEqual(got, ['waiter', 'newcomer']);
  });

  it('a release is idempotent', async () => {
    const s = new Semaphore(1);
    const release = await s.acquire();
    release();
    release();
    assert.equal(s.holders, 0);
    const again = await s.acquire();
    assert.equal(s.holders, 1);
    again();
  });

  it('an aborted waiter leaves the queue and rejects with the reason', async () => {
    const s = new Semaphore(1);
    const release = await s.acquire();
    const ac = new AbortController();
    const aborted = s.acquire(ac.signal);
    const next = s.acquire();
    ac.abort(new Error('gone'));
    await assert.rejects(aborted, /gone/);
    assert.equal(s.waiters, 1);
    release();
    (await next)();
    assert.equal(s.holders, 0);
    assert.throws(() => s.acquire(ac.signal), /gone/);
  });

  it('run releases when its section throws, and never starts it inside the call', async () => {
    const s = new Semaphore(1);
    let started = false;
    const p = s.run(async () => {
      started = true;
      throw new Error('boom');
    });
    assert.equal(started, false);
    await assert.rejects(p, /boom/);
    assert.equal(s.holders, 0);
    assert.equal(await s.run(async () => 7), 7);
  });

  it('needs a slot', () => {
    assert.throws(() => new Semaphore(0), RangeError);
  });
});
