import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PAGE_SIZE, sendPages } from './paging';

describe('sendPages', { timeout: 10_000 }, () => {
  const pages = (n: number, size?: number) => {
    const sent: number[][] = [];
    sendPages(
      Array.from({ length: n }, (_, i) => i),
      (m: { items: number[] }) => sent.push(m.items),
      (items) => ({ items }),
      size,
    );
    return sent;
  };
  it('sends every item once, in order, a full page per message but the last', () => {
    const sent = pages(2 * PAGE_SIZE + 1);
    assert.deepEqual(
      sent.map((p) => p.length),
      [PAGE_SIZE, PAGE_SIZE, 1],
    );
    assert.deepEqual(
      sent.flat(),
      Array.from({ length: 2 * PAGE_SIZE + 1 }, (_, i) => i),
    );
  });
  it('takes a page size, and sends nothing for nothing', () => {
    assert.deepEqual(pages(4, 2), [
      [0, 1],
      [2, 3],
    ]);
    assert.deepEqual(pages(0), []);
    assert.throws(() => pages(1, 0), RangeError);
  });
});
