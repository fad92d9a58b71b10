import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RuntimeError } from '../domain/errors';
import { RequestCache, tokenLength, tokenTtlMs } from './request-cache';

describe('RequestCache', { timeout: 10_000 }, () => {
  it('makes random url-safe tokens of kubelet length, each consumed once', () => {
    const c = new RequestCache<number>();
    const tokens = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const t = c.insert(i);
      assert.match(t, new RegExp(`^[A-Za-z0-9_-]{${tokenLength}}$`));
      tokens.add(t);
    }
    assert.equal(tokens.size, 200);
    const [first] = tokens;
    assert.equal(c.consume(first), 0);
    assert.equal(c.consume(first), null, 'a used token is gone');
    assert.equal(c.consume('AAAAAAAA'), null, 'an unknown token');
  });

  it('expires a token one minute after it was made (injected clock)', () => {
    let now = 1_000_000;
    const c = new RequestCache<string>({ now: () => now });
    const fresh = c.insert('at the limit');
    const stale = c.insert('past it');
    now += tokenTtlMs;
    assert.equal(c.consume(fresh), 'at the limit', 'valid up to and including its expiry time, as kubelet');
    now += 1;
    assert.equal(c.consume(stale), null);
  });

  it('bounds the tokens waiting; the expired ones are swept on insert', () => {
    let now = 0;
    const c = new RequestCache<number>({ now: () => now, maxInFlight: 3 });
    c.insert(1);
    now += 10;
    c.insert(2);
    c.insert(3);
    assert.throws(
      () => c.insert(4),
      (e: unknown) => e instanceof RuntimeError && e.kind === 'resource-exhausted',
    );
    now = tokenTtlMs + 1; // only the first has expired
    c.insert(4);
    assert.equal(c.size, 3);
    assert.throws(() => c.insert(5), RuntimeError);
  });
});
