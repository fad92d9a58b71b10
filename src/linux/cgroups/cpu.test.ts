import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cpu, cpuMaxValue, cpuUsageV2, sharesToWeight } from './cpu';
import { noResources } from './types';

const ctx = { memswSupported: true, currentMemoryLimit: null };

describe('sharesToWeight (runc: 1 + ((shares - 2) * 9999) / 262142)', () => {
  it('maps the ends of the v1 range onto the ends of the v2 range', () => {
    assert.equal(sharesToWeight(2), 1);
    assert.equal(sharesToWeight(262144), 10000);
  });
  it('maps the default 1024 shares to 39 and 512 to 20', () => {
    assert.equal(sharesToWeight(1024), 39);
    assert.equal(sharesToWeight(512), 20);
    assert.equal(sharesToWeight(102), 4);
  });
  it('clamps out-of-range shares instead of underflowing', () => {
    assert.equal(sharesToWeight(0), 1);
    assert.equal(sharesToWeight(1), 1);
    assert.equal(sharesToWeight(1_000_000), 10000);
  });
  it('rejects non-integers', () => {
    assert.throws(() => sharesToWeight(1.5), /integer/);
  });
});

describe('cpuMaxValue', () => {
  it('writes "quota period"', () => assert.equal(cpuMaxValue(50000, 100000), '50000 100000'));
  it('writes "max period" when the quota is unset or unlimited', () => {
    assert.equal(cpuMaxValue(null, 100000), 'max 100000');
    assert.equal(cpuMaxValue(-1, 100000), 'max 100000');
  });
  it('leaves the period out when unset so the kernel keeps it', () => assert.equal(cpuMaxValue(20000, null), '20000'));
  it('writes nothing when neither is set', () => assert.equal(cpuMaxValue(null, null), null));
});

describe('cpu writer', () => {
  it('v1 writes the period, the quota, then the period again (EINVAL on the first is tolerated)', () => {
    const w = cpu.v1({ ...noResources(), cpuShares: 512, cpuQuota: 50000, cpuPeriod: 100000 }, ctx);
    assert.deepEqual(w, [
      { file: 'cpu.shares', value: '512', tolerate: [] },
      { file: 'cpu.cfs_period_us', value: '100000', tolerate: ['EINVAL'] },
      { file: 'cpu.cfs_quota_us', value: '50000', tolerate: [] },
      { file: 'cpu.cfs_period_us', value: '100000', tolerate: [] },
    ]);
  });
  it('v1 unlimited quota is -1', () => {
    assert.deepEqual(cpu.v1({ ...noResources(), cpuQuota: -1 }, ctx), [{ file: 'cpu.cfs_quota_us', value: '-1', tolerate: [] }]);
  });
  it('v2 writes cpu.weight and cpu.max', () => {
    assert.deepEqual(cpu.v2({ ...noResources(), cpuShares: 1024, cpuQuota: 50000, cpuPeriod: 100000 }, ctx), [
      { file: 'cpu.weight', value: '39', tolerate: [] },
      { file: 'cpu.max', value: '50000 100000', tolerate: [] },
    ]);
  });
  it('v2 usage comes from cpu.stat usage_usec in nanoseconds', () => {
    assert.equal(cpuUsageV2('usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n'), 1234000n);
    assert.equal(cpuUsageV2(null), null);
  });
});
