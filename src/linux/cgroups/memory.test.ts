import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CgroupConfigError } from './common';
import { memoryStatsV1, memoryStatsV2, memoryV1Writes, memoryV2Writes, swapV2Value, v1NeedsCurrentLimit } from './memory';
import { noResources } from './types';

const MiB = 1n << 20n;
const GiB = 1n << 30n;
const files = (ws: { file: string; value: string }[]): string[] => ws.map((w) => `${w.file}=${w.value}`);

describe('swapV2Value (memory.swap.max = memory+swap - memory, as runc)', () => {
  it('subtracts the memory limit', () => assert.equal(swapV2Value(256n * MiB, 512n * MiB), String(256n * MiB)));
  it('is 0 when swap equals memory (no swap)', () => assert.equal(swapV2Value(GiB, GiB), '0'));
  it('is max for unlimited swap', () => assert.equal(swapV2Value(GiB, -1n), 'max'));
  it('is unset when swap is unset', () => assert.equal(swapV2Value(GiB, null), null));
  it('follows an unlimited memory limit to max when swap is unset', () => assert.equal(swapV2Value(-1n, null), 'max'));
  it('refuses swap below memory and swap without a memory limit', () => {
    assert.throws(() => swapV2Value(GiB, 512n * MiB), CgroupConfigError);
    assert.throws(() => swapV2Value(null, GiB), CgroupConfigError);
    assert.throws(() => swapV2Value(-1n, GiB), CgroupConfigError);
  });
});

describe('memory v2 writer', () => {
  it('writes memory.max and memory.swap.max; max/0 swap may be missing', () => {
    const w = memoryV2Writes({ ...noResources(), memoryLimitBytes: GiB, memorySwapLimitBytes: GiB });
    assert.deepEqual(w, [
      { file: 'memory.max', value: String(GiB), tolerate: [] },
      { file: 'memory.swap.max', value: '0', tolerate: ['ENOENT'] },
    ]);
    const real = memoryV2Writes({ ...noResources(), memoryLimitBytes: GiB, memorySwapLimitBytes: 2n * GiB });
    assert.deepEqual(real[1], { file: 'memory.swap.max', value: String(GiB), tolerate: [] });
  });
  it('unlimited memory is "max"', () => {
    assert.deepEqual(files(memoryV2Writes({ ...noResources(), memoryLimitBytes: -1n })), ['memory.max=max', 'memory.swap.max=max']);
  });
});

describe('memory v1 writer ordering (runc setMemoryAndSwap)', () => {
  const r = (mem: bigint | null, swap: bigint | null) => ({ ...noResources(), memoryLimitBytes: mem, memorySwapLimitBytes: swap });
  it('raising: swap first when the current limit is below the new swap limit', () => {
    const w = memoryV1Writes(r(2n * GiB, 4n * GiB), { memswSupported: true, currentMemoryLimit: GiB });
    assert.deepEqual(files(w), [`memory.memsw.limit_in_bytes=${4n * GiB}`, `memory.limit_in_bytes=${2n * GiB}`]);
  });
  it('lowering: memory first when the current limit is at or above the new swap limit', () => {
    const w = memoryV1Writes(r(GiB, 2n * GiB), { memswSupported: true, currentMemoryLimit: 4n * GiB });
    assert.deepEqual(files(w), [`memory.limit_in_bytes=${GiB}`, `memory.memsw.limit_in_bytes=${2n * GiB}`]);
  });
  it('a fresh cgroup (unlimited current limit) gets memory first', () => {
    const w = memoryV1Writes(r(GiB, 2n * GiB), { memswSupported: true, currentMemoryLimit: 9223372036854771712n });
    assert.deepEqual(files(w), [`memory.limit_in_bytes=${GiB}`, `memory.memsw.limit_in_bytes=${2n * GiB}`]);
  });
  it('unlimited swap is written first; unlimited memory lifts an unset swap too', () => {
    assert.deepEqual(files(memoryV1Writes(r(GiB, -1n), { memswSupported: true, currentMemoryLimit: GiB })), ['memory.memsw.limit_in_bytes=-1', `memory.limit_in_bytes=${GiB}`]);
    assert.deepEqual(files(memoryV1Writes(r(-1n, null), { memswSupported: true, currentMemoryLimit: GiB })), ['memory.memsw.limit_in_bytes=-1', 'memory.limit_in_bytes=-1']);
  });
  it('needs the current limit only when both are written', () => {
    assert.equal(v1NeedsCurrentLimit(r(GiB, 2n * GiB), true), true);
    assert.equal(v1NeedsCurrentLimit(r(GiB, null), true), false);
    assert.equal(v1NeedsCurrentLimit(r(GiB, GiB), false), false);
  });
  describe('without swap accounting (no memory.memsw.*)', () => {
    const ctx = { memswSupported: false, currentMemoryLimit: null };
    it('drops unlimited swap and swap equal to memory', () => {
      assert.deepEqual(files(memoryV1Writes(r(GiB, -1n), ctx)), [`memory.limit_in_bytes=${GiB}`]);
      assert.deepEqual(files(memoryV1Writes(r(GiB, GiB), ctx)), [`memory.limit_in_bytes=${GiB}`]);
      assert.deepEqual(files(memoryV1Writes(r(-1n, null), ctx)), ['memory.limit_in_bytes=-1']);
    });
    it('fails only when swap beyond memory was asked for', () => {
      assert.throws(() => memoryV1Writes(r(GiB, 2n * GiB), ctx), /no swap accounting/);
    });
  });
  it('refuses memory+swap below memory', () => {
    assert.throws(() => memoryV1Writes(r(2n * GiB, GiB), { memswSupported: true, currentMemoryLimit: 0n }), CgroupConfigError);
  });
});

describe('memory stats', () => {
  it('v1 working set is usage minus total_inactive_file; unlimited is null', () => {
    const s = memoryStatsV1('10000\n', 'cache 5\ninactive_file 1\ntotal_inactive_file 4000\n', '9223372036854771712\n', 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    assert.deepEqual(s, { memoryUsageBytes: 10000n, memoryWorkingSetBytes: 6000n, memoryLimitBytes: null, oomKillCount: 2 });
  });
  it('v2 working set is memory.current minus inactive_file, floored at 0', () => {
    const s = memoryStatsV2('100\n', 'anon 10\ninactive_file 400\n', '1048576\n', 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
    assert.deepEqual(s, { memoryUsageBytes: 100n, memoryWorkingSetBytes: 0n, memoryLimitBytes: 1048576n, oomKillCount: 1 });
    assert.equal(memoryStatsV2('1\n', '', 'max\n', null).memoryLimitBytes, null);
  });
});
