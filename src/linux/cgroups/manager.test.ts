/**
 * The managers driven by a recording fake of the native facade: what they ask the kernel
 * to do, without root (style rule 10).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CgroupCreateSpec, CgroupDeviceRule, CgroupFileRead, CgroupFileWrite, CgroupKillSpec, CgroupNative } from '../../native/cgroups';
import { SyscallError } from '../../native/errors';
import type { CgroupLayout } from './detect';
import { checkDeviceControl } from './devices';
import { CgroupConfigError, cgroupManagerFor, noResources } from './index';

class FakeNative implements CgroupNative {
  calls: string[] = [];
  created: CgroupCreateSpec[] = [];
  writes: CgroupFileWrite[] = [];
  removed: string[] = [];
  killed: CgroupKillSpec[] = [];
  deviceFilters: Array<{ dir: string; rules: CgroupDeviceRule[] }> = [];
  /** errno to return for a write of "<dir>/<file>" (only honoured for mayFail entries). */
  failWrites = new Map<string, number>();
  /** errno name with which a (non-mayFail) write of "<dir>/<file>" fails the batch, as the addon does */
  throwWrites = new Map<string, string>();
  files = new Map<string, string>();

  async cgroupCreate(specs: CgroupCreateSpec[]): Promise<void> {
    this.calls.push('create');
    this.created.push(...specs);
  }
  async cgroupWriteFiles(writes: CgroupFileWrite[]): Promise<number[]> {
    this.calls.push('write');
    this.writes.push(...writes);
    for (const x of writes) {
      const code = this.throwWrites.get(`${x.dir}/${x.file}`);
      if (code && !x.mayFail) throw new SyscallError(`write cgroup file: write ${x.dir}/${x.file}: ${code}`, code, 0, 'write', `${x.dir}/${x.file}`, 'write cgroup file');
    }
    return writes.map((w) => (w.mayFail ? (this.failWrites.get(`${w.dir}/${w.file}`) ?? 0) : 0));
  }
  async cgroupReadFiles(reads: CgroupFileRead[]): Promise<(string | null)[]> {
    this.calls.push('read');
    return reads.map((r) => this.files.get(`${r.dir}/${r.file}`) ?? null);
  }
  async cgroupKillAll(spec: CgroupKillSpec): Promise<void> {
    this.calls.push('kill');
    this.killed.push(spec);
  }
  async cgroupRemove(dirs: string[]): Promise<void> {
    this.calls.push('remove');
    this.removed.push(...dirs);
  }
  async cgroupDeviceFilter(dir: string, rules: CgroupDeviceRule[]): Promise<void> {
    this.calls.push('device-filter');
    this.deviceFilters.push({ dir, rules });
  }
  async cgroupDeviceFilterProbe(): Promise<number> {
    return 0;
  }
}

const hybrid: CgroupLayout = {
  mode: 'hybrid',
  v1Mounts: new Map(['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'freezer', 'devices'].map((c) => [c, `/cg/${c}`])),
  unifiedMount: '/cg/unified',
  unifiedControllers: new Set(['hugetlb']),
  memswSupported: true,
  deviceFilterErrno: 0,
};
const pureV2: CgroupLayout = {
  mode: 'v2',
  v1Mounts: new Map(),
  unifiedMount: '/cg',
  unifiedControllers: new Set(['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma']),
  memswSupported: false,
  deviceFilterErrno: 0,
};
const opts = { killTimeoutMs: 1234, deviceEnforcement: 'auto' } as const;
const w = (x: CgroupFileWrite): string => `${x.dir}/${x.file}=${x.value}${x.mayFail ? '?' : ''}`;

describe('v1 manager on a hybrid host', () => {
  it('creates in every v1 hierarchy and the unified one, filling cpuset from the parent', async () => {
    const n = new FakeNative();
    n.files.set('/cg/memory/a/b/memory.limit_in_bytes', '9223372036854771712\n');
    const m = cgroupManagerFor(hybrid, n, opts);
    assert.equal(m.mode, 'hybrid');
    await m.create('/a/b', {
      ...noResources(),
      cpuShares: 512,
      cpusetCpus: '0',
      memoryLimitBytes: 1n << 30n,
      memorySwapLimitBytes: 2n << 30n,
      pidsLimit: 10,
      hugepageLimits: [{ pageSize: '2MB', limit: 2097152n }],
    });
    assert.deepEqual(
      n.created.map((s) => `${s.root}:${s.path}:${s.inheritFiles.join(',')}`),
      [
        '/cg/cpu:a/b:',
        '/cg/cpuacct:a/b:',
        '/cg/cpuset:a/b:cpuset.cpus,cpuset.mems',
        '/cg/memory:a/b:',
        '/cg/pids:a/b:',
        '/cg/freezer:a/b:',
        '/cg/devices:a/b:',
        '/cg/unified:a/b:',
      ],
    );
    assert.deepEqual(n.writes.map(w), [
      // hugetlb lives on cgroup2 here: enable it from the root down to the parent
      '/cg/unified/cgroup.subtree_control=+hugetlb?',
      '/cg/unified/a/cgroup.subtree_control=+hugetlb?',
      '/cg/cpuset/a/b/cpuset.cpus=0',
      '/cg/cpu/a/b/cpu.shares=512',
      '/cg/memory/a/b/memory.limit_in_bytes=1073741824',
      '/cg/memory/a/b/memory.memsw.limit_in_bytes=2147483648',
      '/cg/pids/a/b/pids.max=10',
      '/cg/unified/a/b/hugetlb.2MB.max=2097152',
    ]);
    assert.deepEqual(n.calls, ['create', 'write', 'read', 'write']);
  });

  it('lists paths per controller, hugetlb on the unified side', () => {
    const p = cgroupManagerFor(hybrid, new FakeNative(), opts).paths('/x');
    assert.deepEqual(p, {
      cpu: '/cg/cpu/x',
      cpuacct: '/cg/cpuacct/x',
      cpuset: '/cg/cpuset/x',
      memory: '/cg/memory/x',
      pids: '/cg/pids/x',
      hugetlb: '/cg/unified/x',
      freezer: '/cg/freezer/x',
      devices: '/cg/devices/x',
      unified: '/cg/unified/x',
    });
  });

  it('enables nothing on cgroup2 when no resource needs it there (tasks may then live at any level)', async () => {
    const n = new FakeNative();
    await cgroupManagerFor(hybrid, n, opts).create('/a/b', { ...noResources(), pidsLimit: 5 });
    assert.deepEqual(n.writes.map(w), ['/cg/pids/a/b/pids.max=5']);
  });

  it('attaches, kills and removes in every distinct directory', async () => {
    const n = new FakeNative();
    const m = cgroupManagerFor(hybrid, n, opts);
    await m.attach('/x', 42);
    assert.equal(n.writes.length, 8);
    assert.ok(n.writes.every((x) => x.file === 'cgroup.procs' && x.value === '42'));
    await m.killAll('/x');
    assert.deepEqual(n.killed[0].killDirs, ['/cg/unified/x']);
    assert.equal(n.killed[0].freezerDir, '/cg/freezer/x');
    assert.equal(n.killed[0].timeoutMs, 1234);
    await m.remove('/x');
    assert.equal(n.removed.length, 8);
  });

  it('writes unified keys only for controllers cgroup2 offers here', async () => {
    const n = new FakeNative();
    const m = cgroupManagerFor(hybrid, n, opts);
    await m.update('/x', { ...noResources(), unified: { 'hugetlb.2MB.rsvd.max': '0' } });
    assert.deepEqual(n.writes.map(w), ['/cg/unified/cgroup.subtree_control=+hugetlb?', '/cg/unified/x/hugetlb.2MB.rsvd.max=0']);
    await assert.rejects(m.update('/x', { ...noResources(), unified: { 'memory.high': '1G' } }), CgroupConfigError);
    await assert.rejects(m.update('/x', { ...noResources(), unified: { 'cgroup.procs': '1' } }), /not allowed/);
    await assert.rejects(m.update('/x', { ...noResources(), unified: { '../../etc/passwd': 'x' } }), /not allowed/);
  });

  it('update validates before enabling anything', async () => {
    const n = new FakeNative();
    const m = cgroupManagerFor(hybrid, n, opts);
    await assert.rejects(m.update('/x', { ...noResources(), hugepageLimits: [{ pageSize: '3XB', limit: 1n }] }), /invalid hugepage size/);
    await assert.rejects(m.update('/x', { ...noResources(), hugepageLimits: [{ pageSize: '2MB', limit: 1n }], unified: { bad: '1' } }), /not allowed/);
    assert.deepEqual(n.calls, []);
  });

  it('rejects bad input before making any directory', async () => {
    const n = new FakeNative();
    const m = cgroupManagerFor({ ...hybrid, memswSupported: false }, n, opts);
    await assert.rejects(m.create('/x', { ...noResources(), memoryLimitBytes: 1n << 30n, memorySwapLimitBytes: 2n << 30n }), /no swap accounting/);
    await assert.rejects(m.create('/x', { ...noResources(), cpusetCpus: '0; rm' }), /cpu\/node list/);
    await assert.rejects(m.create('relative', noResources()), /absolute/);
    await assert.rejects(m.create('/', noResources()), /root/);
    await assert.rejects(m.create('/a/../b', noResources()), /invalid cgroup path/);
    assert.deepEqual(n.calls, []);
  });

  it('names the resource when the kernel refuses its value or a unified key has no file', async () => {
    const n = new FakeNative();
    const m = cgroupManagerFor(pureV2, n, opts);
    n.throwWrites.set('/cg/x/cpuset.cpus', 'ERANGE');
    await assert.rejects(
      m.update('/x', { ...noResources(), cpusetCpus: '64' }),
      (e: unknown) => e instanceof CgroupConfigError && e.field === 'cpusetCpus' && /"64" refused by the kernel for cpuset.cpus \(ERANGE\)/.test(e.detail),
    );
    n.throwWrites.set('/cg/x/memory.nosuch', 'ENOENT');
    await assert.rejects(
      m.update('/x', { ...noResources(), unified: { 'memory.nosuch': '1' } }),
      (e: unknown) => e instanceof CgroupConfigError && e.field === 'unified' && /"memory.nosuch" is not a control file/.test(e.message),
    );
    // Anything else stays the host's failure.
    n.throwWrites.set('/cg/x/pids.max', 'EACCES');
    await assert.rejects(m.update('/x', { ...noResources(), pidsLimit: 5 }), (e: unknown) => e instanceof SyscallError && e.code === 'EACCES');
  });

  it('refuses cpu lists the kernel would, control characters and paths too long for their files, before any directory', async () => {
    const n = new FakeNative();
    const m = cgroupManagerFor(hybrid, n, opts);
    for (const [v, re] of [
      ['3-1', /range 3-1 goes backwards/],
      ['0,', /not a cpu\/node list/],
      ['99999999999', /is not a cpu\/node number/],
    ] as const) {
      await assert.rejects(m.create('/x', { ...noResources(), cpusetCpus: v }), (e: unknown) => e instanceof CgroupConfigError && e.field === 'cpusetCpus' && re.test(e.message));
    }
    await assert.rejects(m.create('/a\nb', noResources()), /control character/);
    await assert.rejects(m.create(`/${'x'.repeat(256)}`, noResources()), /over NAME_MAX/);
    await assert.rejects(m.create(`/${'x/'.repeat(2020)}y`, noResources()), /cgroup path too long/);
    assert.throws(() => m.paths(`/${`${'x'.repeat(200)}/`.repeat(20)}y`), /cgroup path too long/);
    assert.deepEqual(n.calls, []);
  });

  it('tolerates the first cpu period write failing with EINVAL, but not other errnos', async () => {
    const n = new FakeNative();
    const m = cgroupManagerFor(hybrid, n, opts);
    n.failWrites.set('/cg/cpu/x/cpu.cfs_period_us', 22);
    await m.update('/x', { ...noResources(), cpuQuota: 1000, cpuPeriod: 10000 });
    n.failWrites.set('/cg/cpu/x/cpu.cfs_period_us', 13);
    await assert.rejects(
      m.update('/x', { ...noResources(), cpuQuota: 1000, cpuPeriod: 10000 }),
      (e: unknown) => e instanceof SyscallError && e.code === 'EACCES' && e.path === '/cg/cpu/x/cpu.cfs_period_us',
    );
  });

  it('a v1 host without cgroup2 refuses unified keys and has no kill file', async () => {
    const n = new FakeNative();
    const m = cgroupManagerFor({ ...hybrid, mode: 'v1', unifiedMount: null, unifiedControllers: new Set() }, n, opts);
    assert.equal(m.mode, 'v1');
    await assert.rejects(m.update('/x', { ...noResources(), unified: { 'memory.high': '1' } }), /needs cgroup v2/);
    await assert.rejects(m.update('/x', { ...noResources(), hugepageLimits: [{ pageSize: '2MB', limit: 1n }] }), /hugetlb controller is not available/);
    await m.killAll('/x');
    assert.deepEqual(n.killed[0].killDirs, []);
  });
});

describe('v2 manager', () => {
  it('creates one directory, enables controllers top-down, writes v2 files', async () => {
    const n = new FakeNative();
    const m = cgroupManagerFor(pureV2, n, opts);
    assert.equal(m.mode, 'v2');
    await m.create('/a/b', {
      ...noResources(),
      cpuShares: 1024,
      cpuQuota: -1,
      cpuPeriod: 100000,
      memoryLimitBytes: 1n << 30n,
      memorySwapLimitBytes: 1n << 30n,
      pidsLimit: -1,
      unified: { 'io.weight': 'default 50' },
    });
    assert.deepEqual(n.created, [{ root: '/cg', path: 'a/b', inheritFiles: [] }]);
    assert.deepEqual(n.writes.map(w), [
      '/cg/cgroup.subtree_control=+cpu +cpuset +memory +pids +hugetlb +io?',
      '/cg/a/cgroup.subtree_control=+cpu +cpuset +memory +pids +hugetlb +io?',
      '/cg/a/b/cpu.weight=39',
      '/cg/a/b/cpu.max=max 100000',
      '/cg/a/b/memory.max=1073741824',
      '/cg/a/b/memory.swap.max=0?',
      '/cg/a/b/pids.max=max',
      '/cg/a/b/io.weight=default 50',
    ]);
  });

  it('falls back to one controller at a time where the whole line is refused', async () => {
    const n = new FakeNative();
    n.failWrites.set('/cg/a/cgroup.subtree_control', 16);
    await cgroupManagerFor(pureV2, n, opts).create('/a/b', noResources());
    const lines = n.writes.filter((x) => x.dir === '/cg/a').map((x) => x.value);
    assert.deepEqual(lines, ['+cpu +cpuset +memory +pids +hugetlb', '+cpu', '+cpuset', '+memory', '+pids', '+hugetlb']);
  });

  it('ignores a missing memory.swap.max for "no swap" but not for a real swap allowance', async () => {
    const n = new FakeNative();
    n.failWrites.set('/cg/x/memory.swap.max', 2);
    const m = cgroupManagerFor(pureV2, n, opts);
    await m.update('/x', { ...noResources(), memoryLimitBytes: 100n, memorySwapLimitBytes: 100n });
    const before = n.writes.length;
    await m.update('/x', { ...noResources(), memoryLimitBytes: 100n, memorySwapLimitBytes: 300n });
    assert.equal(n.writes.length, before + 2);
    assert.equal(n.writes.at(-1)?.mayFail, false); // so the kernel's ENOENT would reject
  });

  it('reads stats from cpu.stat, memory.* and pids.current', async () => {
    const n = new FakeNative();
    const f = (file: string, v: string) => n.files.set(`/cg/x/${file}`, v);
    f('cgroup.type', 'domain\n');
    f('cpu.stat', 'usage_usec 5\n');
    f('memory.current', '1000\n');
    f('memory.stat', 'inactive_file 100\n');
    f('memory.max', 'max\n');
    f('memory.events', 'oom_kill 3\n');
    f('pids.current', '7\n');
    const s = await cgroupManagerFor(pureV2, n, opts).stats('/x');
    assert.deepEqual(s, { cpuUsageNanos: 5000n, memoryUsageBytes: 1000n, memoryWorkingSetBytes: 900n, memoryLimitBytes: null, pids: 7, oomKillCount: 3 });
    await assert.rejects(cgroupManagerFor(pureV2, n, opts).stats('/missing'), (e: unknown) => e instanceof SyscallError && e.code === 'ENOENT');
  });

  it('kills with cgroup.kill and the v2 freezer as fallback', async () => {
    const n = new FakeNative();
    await cgroupManagerFor(pureV2, n, opts).killAll('/x');
    assert.deepEqual(n.killed[0], { killDirs: ['/cg/x'], procsDirs: ['/cg/x'], freezerDir: '/cg/x', freezerVersion: 2, timeoutMs: 1234 });
  });
});

describe('device rules', () => {
  const rules = [
    { allow: false, type: 'a', major: null, minor: null, access: 'rwm' },
    { allow: true, type: 'c', major: null, minor: null, access: 'm' },
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: true, type: 'b', major: 7, minor: null, access: 'r' },
  ] as const;
  const withDevices = { ...noResources(), devices: rules.map((r) => ({ ...r })), pidsLimit: 5 };

  it('hybrid, auto: devices.deny/allow in the v1 devices cgroup, and the BPF program on cgroup2, before the rest', async () => {
    const n = new FakeNative();
    const m = cgroupManagerFor(hybrid, n, opts);
    assert.deepEqual(m.deviceControl, { v1: true, bpf: true });
    await m.create('/a/b', withDevices);
    assert.ok(n.created.some((c) => c.root === '/cg/devices'));
    assert.deepEqual(n.writes.map(w), [
      '/cg/devices/a/b/devices.deny=a',
      '/cg/devices/a/b/devices.allow=c *:* m',
      '/cg/devices/a/b/devices.allow=c 1:3 rwm',
      '/cg/devices/a/b/devices.allow=b 7:* r',
      '/cg/pids/a/b/pids.max=5',
    ]);
    assert.deepEqual(n.deviceFilters, [{ dir: '/cg/unified/a/b', rules: withDevices.devices }]);
    assert.deepEqual(n.calls, ['create', 'write', 'device-filter', 'write']);
    // Tasks join the devices cgroup too.
    assert.equal(m.paths('/a/b').devices, '/cg/devices/a/b');
  });

  it('"v1" writes only the v1 files; "bpf" only attaches the program and leaves the v1 devices controller alone', async () => {
    const v1 = new FakeNative();
    const mv1 = cgroupManagerFor(hybrid, v1, { ...opts, deviceEnforcement: 'v1' });
    assert.deepEqual(mv1.deviceControl, { v1: true, bpf: false });
    await mv1.create('/a/b', withDevices);
    assert.equal(v1.deviceFilters.length, 0);
    assert.equal(v1.writes.filter((x) => x.dir === '/cg/devices/a/b').length, 4);

    const bpf = new FakeNative();
    const mbpf = cgroupManagerFor(hybrid, bpf, { ...opts, deviceEnforcement: 'bpf' });
    assert.deepEqual(mbpf.deviceControl, { v1: false, bpf: true });
    await mbpf.create('/a/b', withDevices);
    assert.ok(!bpf.created.some((c) => c.root === '/cg/devices'));
    assert.equal(mbpf.paths('/a/b').devices, undefined);
    assert.ok(!bpf.writes.some((x) => x.file.startsWith('devices.')));
    assert.deepEqual(
      bpf.deviceFilters.map((f) => f.dir),
      ['/cg/unified/a/b'],
    );
  });

  it('v2: the program on the cgroup dir', async () => {
    const n = new FakeNative();
    const m = cgroupManagerFor(pureV2, n, opts);
    assert.deepEqual(m.deviceControl, { v1: false, bpf: true });
    await m.create('/a/b', withDevices);
    assert.deepEqual(
      n.deviceFilters.map((f) => f.dir),
      ['/cg/a/b'],
    );
  });

  it('an update without device rules leaves them as they are', async () => {
    const n = new FakeNative();
    await cgroupManagerFor(hybrid, n, opts).update('/a/b', { ...noResources(), cpuShares: 256 });
    // as resources saved before devices existed read back
    const { devices: _d, ...old } = { ...noResources(), pidsLimit: 3 };
    await cgroupManagerFor(hybrid, n, opts).update('/a/b', old as never);
    assert.deepEqual(n.writes.map(w), ['/cg/cpu/a/b/cpu.shares=256', '/cg/pids/a/b/pids.max=3']);
    assert.equal(n.deviceFilters.length, 0);
  });

  it('refuses rules the mechanisms cannot express, before touching anything', async () => {
    const n = new FakeNative();
    const m = cgroupManagerFor(hybrid, n, opts);
    const deny = rules[0];
    const bad = async (devices: object[], re: RegExp) =>
      assert.rejects(m.create('/x', { ...noResources(), devices: devices as never }), (e: unknown) => e instanceof CgroupConfigError && re.test((e as Error).message));
    await bad([], /must start with a rule for every device/);
    await bad([{ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }], /must start with a rule for every device/);
    await bad([deny, { allow: true, type: 'c', major: 5000, minor: null, access: 'r' }], /device rule 1 .*major must be null \(any\) or an integer in 0\.\.4095/);
    await bad([deny, { allow: true, type: 'b', major: 7, minor: 1 << 20, access: 'r' }], /minor must be .* 0\.\.1048575/);
    await bad([deny, { allow: true, type: 'c', major: -1, minor: null, access: 'r' }], /major must be/);
    await bad([deny, { allow: true, type: 'c', major: 1, minor: 3, access: '' }], /access must be a combination/);
    await bad([deny, { allow: true, type: 'c', major: 1, minor: 3, access: 'rr' }], /access must be a combination/);
    await bad([deny, { allow: true, type: 'p', major: 1, minor: 3, access: 'r' }], /type must be/);
    await bad([deny, { allow: true, type: 'a', major: 1, minor: null, access: 'rwm' }], /cannot name a major, a minor or part of rwm/);
    await bad([{ allow: true, type: 'a', major: null, minor: null, access: 'r' }], /cannot name a major/);
    assert.deepEqual(n.calls, []);
  });

  it('start-up: the configured mechanism must exist on the host', () => {
    const name = (e: number) => (e === 1 ? 'EPERM' : `E${e}`);
    assert.deepEqual(checkDeviceControl(hybrid, 'auto', name), { v1: true, bpf: true });
    const noBpf = { ...hybrid, deviceFilterErrno: 1 };
    assert.deepEqual(checkDeviceControl(noBpf, 'auto', name), { v1: true, bpf: false });
    assert.throws(() => checkDeviceControl(noBpf, 'bpf', name), /"bpf" but the kernel refused a cgroup device program \(bpf: EPERM\)/);
    assert.throws(() => checkDeviceControl(pureV2, 'v1', name), /"v1" but the v1 devices controller is not mounted/);
    const v1NoDevices = { ...hybrid, mode: 'v1' as const, unifiedMount: null, deviceFilterErrno: null, v1Mounts: new Map([['cpu', '/cg/cpu']]) };
    assert.throws(
      () => checkDeviceControl(v1NoDevices, 'auto', name),
      /cannot be enforced on this host: the v1 devices controller is not mounted and no cgroup2 hierarchy is mounted/,
    );
  });
});
