import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { devMajorMinor } from './devices';
import { parseSignal, stopSignal } from './signals';

describe('parseSignal', () => {
  it('names, bare names, numbers, aliases and real-time signals', () => {
    assert.deepEqual(parseSignal('SIGTERM'), { name: 'SIGTERM', number: 15 });
    assert.deepEqual(parseSignal('kill'), { name: 'SIGKILL', number: 9 });
    assert.deepEqual(parseSignal(' 3 '), { name: 'SIGQUIT', number: 3 });
    assert.deepEqual(parseSignal('SIGIOT'), { name: 'SIGABRT', number: 6 });
    assert.deepEqual(parseSignal('SIGRTMIN'), { name: 'SIGRTMIN', number: 34 });
    assert.deepEqual(parseSignal('SIGRTMAX-2'), { name: 'SIGRTMIN+28', number: 62 });
    assert.deepEqual(parseSignal('64'), { name: 'SIGRTMAX', number: 64 });
    for (const bad of ['', '0', '65', '32', 'SIGRTMIN-1', 'SIGRTMAX+1', 'SIGFOO']) assert.equal(parseSignal(bad), null, bad);
  });

  it("the stop signal: the one asked for, else the image's, else SIGTERM", () => {
    assert.deepEqual(stopSignal({ name: 'SIGRTMIN+2', number: 36 }, 'SIGQUIT'), { name: 'SIGRTMIN+2', number: 36 });
    assert.deepEqual(stopSignal(null, 'SIGQUIT'), { name: 'SIGQUIT', number: 3 });
    assert.deepEqual(stopSignal(null, ''), { name: 'SIGTERM', number: 15 });
  });
});

describe('devMajorMinor', () => {
  it('decodes Linux dev_t', () => {
    assert.deepEqual(devMajorMinor(0x103n), { major: 1, minor: 3 });
    assert.deepEqual(devMajorMinor(0x8800n), { major: 136, minor: 0 });
    const makedev = (major: bigint, minor: bigint) => ((major & 0xfffn) << 8n) | ((major & ~0xfffn) << 32n) | (minor & 0xffn) | ((minor & ~0xffn) << 12n);
    assert.equal(makedev(259n, 0xfffffn), 0xfff103ffn);
    assert.deepEqual(devMajorMinor(makedev(259n, 0xfffffn)), { major: 259, minor: 0xfffff });
    assert.deepEqual(devMajorMinor(makedev(0x1001n, 5n)), { major: 0x1001, minor: 5 });
  });
});
