import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalHugepageSize, hugepageSizeName, hugetlb, parseHugepageSize } from './hugetlb';
import { noResources } from './types';

const ctx = { memswSupported: true, currentMemoryLimit: null };

describe('hugepage size names (as mm/hugetlb_cgroup.c prints them)', () => {
  it('names sizes in whole GB, else MB, else KB', () => {
    assert.equal(hugepageSizeName(2n << 20n), '2MB');
    assert.equal(hugepageSizeName(1n << 30n), '1GB');
    assert.equal(hugepageSizeName(64n << 10n), '64KB');
    assert.equal(hugepageSizeName(32n << 20n), '32MB');
    assert.equal(hugepageSizeName(16n << 30n), '16GB');
  });
  it('accepts sysfs, kernel and Kubernetes spellings', () => {
    assert.equal(parseHugepageSize('2048kB'), 2n << 20n);
    assert.equal(canonicalHugepageSize('2048kB'), '2MB');
    assert.equal(canonicalHugepageSize('1048576kB'), '1GB');
    assert.equal(canonicalHugepageSize('2Mi'), '2MB');
    assert.equal(canonicalHugepageSize('1GB'), '1GB');
    assert.equal(canonicalHugepageSize('1024MB'), '1GB');
  });
  it('rejects nonsense', () => {
    for (const bad of ['', '2', 'MB', '0MB', '2TB', '2MB/../x', '-2MB']) assert.throws(() => parseHugepageSize(bad), /invalid hugepage size/);
  });
});

describe('hugetlb writer', () => {
  const r = {
    ...noResources(),
    hugepageLimits: [
      { pageSize: '2MB', limit: 4n << 20n },
      { pageSize: '1048576kB', limit: -1n },
    ],
  };
  it('v1 writes hugetlb.<size>.limit_in_bytes', () => {
    assert.deepEqual(
      hugetlb.v1(r, ctx).map((w) => `${w.file}=${w.value}`),
      ['hugetlb.2MB.limit_in_bytes=4194304', 'hugetlb.1GB.limit_in_bytes=-1'],
    );
  });
  it('v2 writes hugetlb.<size>.max', () => {
    assert.deepEqual(
      hugetlb.v2(r, ctx).map((w) => `${w.file}=${w.value}`),
      ['hugetlb.2MB.max=4194304', 'hugetlb.1GB.max=max'],
    );
  });
});
