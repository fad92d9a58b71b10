/**
 * The cgroup manager against the real kernel (needs root). Each test works under its own
 * parent cgroup (/nodecri-test-<random>) and checks, through withoutLeaks, that it leaves
 * no cgroup directory and no child process behind in any hierarchy, even when it fails.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { before, describe, it } from 'node:test';
import { SyscallError } from '../../src/native/errors';
import {
  type CgroupLayout,
  type CgroupManager,
  CgroupConfigError,
  type CgroupPaths,
  type Resources,
  cgroupManagerFor,
  createCgroupManager,
  noResources,
} from '../../src/linux/cgroups';
import { type CgroupKillSpec, cgroupNative } from '../../src/native/cgroups';
import { withoutLeaks } from '../helpers/leaks';
import { mountTable } from '../helpers/mountinfo';

const isRoot = process.getuid?.() === 0;
const MiB = 1n << 20n;

let manager: CgroupManager;
let layout: CgroupLayout;

function uniqueDirs(p: CgroupPaths): string[] {
  return [...new Set(Object.values(p).filter((d): d is string => d !== undefined))];
}

function read(dir: string, file: string): string {
  return fs.readFileSync(`${dir}/${file}`, 'utf8').trim();
}

function procs(dir: string): number[] {
  return read(dir, 'cgroup.procs')
    .split('\n')
    .filter((l) => l !== '')
    .map(Number);
}

/** Runs `body` under a fresh parent cgroup; cleans up and checks for leaks either way. */
async function underParent(body: (parent: string) => Promise<void>): Promise<void> {
  const parent = `/nodecri-test-${randomBytes(4).toString('hex')}`;
  const parentDirs = uniqueDirs(manager.paths(parent));
  await withoutLeaks({ mountPrefixes: [], cgroupDirs: parentDirs }, async () => {
    try {
      await body(parent);
    } finally {
      // Whatever the body left running or created goes, children first.
      await manager.killAll(parent);
      await manager.remove(parent);
    }
  });
  // withoutLeaks lists what appeared *below* the parent; the parent itself must go too.
  for (const d of parentDirs) assert.equal(fs.existsSync(d), false, `${d} left behind`);
}

function hasV1Freezer(): boolean {
  return mountTable().some((m) => m.fstype === 'cgroup' && m.superOptions.includes('freezer'));
}

function hasCgroup2(): boolean {
  return mountTable().some((m) => m.fstype === 'cgroup2');
}

function sleeper(): ChildProcess {
  return spawn('sleep', ['30'], { stdio: 'ignore' });
}

function exited(child: ChildProcess): Promise<NodeJS.Signals | number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode ?? child.exitCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const limits: Resources = {
  ...noResources(),
  cpuShares: 512,
  cpuQuota: 50_000,
  cpuPeriod: 100_000,
  cpusetCpus: '0',
  cpusetMems: '0',
  memoryLimitBytes: 256n * MiB,
  memorySwapLimitBytes: 512n * MiB,
  pidsLimit: 64,
  hugepageLimits: [{ pageSize: '2MB', limit: 8n * MiB }],
};

describe('cgroups (integration)', { skip: isRoot ? false : 'needs root' }, () => {
  before(async () => {
    ({ manager, layout } = await createCgroupManager());
  });

  it('detects the host layout', () => {
    assert.ok(['v1', 'hybrid', 'v2'].includes(layout.mode));
    assert.equal(manager.mode, layout.mode);
    if (layout.mode !== 'v2') assert.ok(layout.v1Mounts.has('memory'), 'v1 memory controller');
  });

  it('applies limits that read back from the cgroup files, and updates them', () =>
    underParent(async (parent) => {
      const pod = `${parent}/pod1`;
      const hasHugetlb = manager.paths(pod).hugetlb !== undefined;
      await manager.create(pod, { ...limits, hugepageLimits: hasHugetlb ? limits.hugepageLimits : [] });
      const p = manager.paths(pod);
      const cpuV1 = p.cpu !== undefined && p.cpu !== p.unified;
      if (cpuV1) {
        assert.equal(read(p.cpu as string, 'cpu.shares'), '512');
        assert.equal(read(p.cpu as string, 'cpu.cfs_quota_us'), '50000');
        assert.equal(read(p.cpu as string, 'cpu.cfs_period_us'), '100000');
      } else {
        assert.equal(read(p.cpu as string, 'cpu.weight'), '20');
        assert.equal(read(p.cpu as string, 'cpu.max'), '50000 100000');
      }
      assert.equal(read(p.cpuset as string, 'cpuset.cpus'), '0');
      assert.equal(read(p.cpuset as string, 'cpuset.mems'), '0');
      const memV1 = p.memory !== p.unified;
      if (memV1) {
        assert.equal(read(p.memory as string, 'memory.limit_in_bytes'), String(256n * MiB));
        if (layout.memswSupported) assert.equal(read(p.memory as string, 'memory.memsw.limit_in_bytes'), String(512n * MiB));
      } else {
        assert.equal(read(p.memory as string, 'memory.max'), String(256n * MiB));
        if (fs.existsSync(`${p.memory}/memory.swap.max`)) assert.equal(read(p.memory as string, 'memory.swap.max'), String(256n * MiB));
      }
      assert.equal(read(p.pids as string, 'pids.max'), '64');
      if (hasHugetlb) {
        const file = p.hugetlb === p.unified ? 'hugetlb.2MB.max' : 'hugetlb.2MB.limit_in_bytes';
        assert.equal(read(p.hugetlb as string, file), String(8n * MiB));
      }
      if (memV1 && p.cpuset !== undefined) {
        // The new v1 parent got cpus/mems from the root so that tasks can join below it.
        assert.notEqual(read(manager.paths(parent).cpuset as string, 'cpuset.cpus'), '');
      }

      // Raise memory past the old memory+swap (swap must go first), then lower both
      // below the old memory limit (memory must go first).
      await manager.update(pod, { ...noResources(), memoryLimitBytes: 1024n * MiB, memorySwapLimitBytes: 2048n * MiB, cpuQuota: -1, pidsLimit: -1 });
      if (memV1) {
        assert.equal(read(p.memory as string, 'memory.limit_in_bytes'), String(1024n * MiB));
        if (layout.memswSupported) assert.equal(read(p.memory as string, 'memory.memsw.limit_in_bytes'), String(2048n * MiB));
      } else {
        assert.equal(read(p.memory as string, 'memory.max'), String(1024n * MiB));
      }
      assert.equal(read(p.cpu as string, cpuV1 ? 'cpu.cfs_quota_us' : 'cpu.max'), cpuV1 ? '-1' : 'max 100000');
      assert.equal(read(p.pids as string, 'pids.max'), 'max');
      await manager.update(pod, { ...noResources(), memoryLimitBytes: 64n * MiB, memorySwapLimitBytes: 128n * MiB });
      if (memV1) {
        assert.equal(read(p.memory as string, 'memory.limit_in_bytes'), String(64n * MiB));
        if (layout.memswSupported) assert.equal(read(p.memory as string, 'memory.memsw.limit_in_bytes'), String(128n * MiB));
      }
      // Verbatim unified keys land in the cgroup2 directory where the controller is there.
      if (hasHugetlb && p.hugetlb === p.unified) {
        await manager.update(pod, { ...noResources(), unified: { 'hugetlb.2MB.max': String(4n * MiB) } });
        assert.equal(read(p.unified as string, 'hugetlb.2MB.max'), String(4n * MiB));
      }
    }));

  it('puts an attached process into cgroup.procs of every controller', () =>
    underParent(async (parent) => {
      const pod = `${parent}/pod1`;
      await manager.create(pod, limits.hugepageLimits && manager.paths(pod).hugetlb ? limits : { ...limits, hugepageLimits: [] });
      const child = sleeper();
      const pid = child.pid as number;
      await manager.attach(pod, pid);
      for (const dir of uniqueDirs(manager.paths(pod))) assert.ok(procs(dir).includes(pid), `${pid} in ${dir}/cgroup.procs`);
      await manager.killAll(pod);
      assert.equal(await exited(child), 'SIGKILL');
    }));

  it('reports stats as numbers; CPU usage grows while a child spins', () =>
    underParent(async (parent) => {
      const pod = `${parent}/pod1`;
      await manager.create(pod, noResources());
      // The child spins only after it has been attached, when told so on stdin, until it has
      // used 300 ms of CPU itself (not of wall time, which a loaded machine would not fill).
      const child = spawn(
        process.execPath,
        ['-e', `process.stdin.once('data', () => { const t0 = process.cpuUsage(); while (process.cpuUsage(t0).user < 300_000); process.exit(0); })`],
        {
          stdio: ['pipe', 'ignore', 'ignore'],
        },
      );
      await manager.attach(pod, child.pid as number);
      const s1 = await manager.stats(pod);
      assert.equal(typeof s1.cpuUsageNanos, 'bigint');
      assert.equal(typeof s1.memoryUsageBytes, 'bigint');
      assert.equal(typeof s1.memoryWorkingSetBytes, 'bigint');
      assert.ok((s1.memoryWorkingSetBytes as bigint) <= (s1.memoryUsageBytes as bigint));
      assert.equal(s1.memoryLimitBytes, null, 'no limit set');
      assert.equal(s1.pids, 1);
      assert.equal(typeof s1.oomKillCount, 'number');
      child.stdin?.write('go\n');
      assert.equal(await exited(child), 0);
      const s2 = await manager.stats(pod);
      const grown = (s2.cpuUsageNanos as bigint) - (s1.cpuUsageNanos as bigint);
      assert.ok(grown >= 100_000_000n, `cpu usage grew by ${grown} ns`);
      assert.equal(s2.pids, 0);

      await manager.update(pod, { ...noResources(), memoryLimitBytes: 128n * MiB });
      assert.equal((await manager.stats(pod)).memoryLimitBytes, 128n * MiB);
      await assert.rejects(manager.stats(`${parent}/nope`), (e: unknown) => e instanceof SyscallError && e.code === 'ENOENT');
    }));

  it('kill-all empties cgroup.procs, child cgroups included, and the processes are dead', () =>
    underParent(async (parent) => {
      // Tasks only in leaves: cgroup2 forbids them in a cgroup that has controllers
      // enabled for its children.
      const pod = `${parent}/pod1`;
      const [c1, c2] = [`${pod}/ctr1`, `${pod}/ctr2`];
      await manager.create(pod, noResources());
      await manager.create(c1, noResources());
      await manager.create(c2, noResources());
      const children = [sleeper(), sleeper(), sleeper()];
      await manager.attach(c1, children[0].pid as number);
      await manager.attach(c1, children[1].pid as number);
      await manager.attach(c2, children[2].pid as number);
      assert.equal((await manager.stats(c1)).pids, 2);
      await manager.killAll(pod);
      for (const dir of [pod, c1, c2].flatMap((p) => uniqueDirs(manager.paths(p)))) {
        assert.deepEqual(procs(dir), [], `${dir}/cgroup.procs`);
      }
      for (const c of children) {
        assert.equal(await exited(c), 'SIGKILL');
        assert.equal(alive(c.pid as number), false);
      }
      // Idempotent: nothing left to kill, and a cgroup that does not exist is fine too.
      await manager.killAll(pod);
      await manager.killAll(`${parent}/never-made`);
    }));

  it('kill-all without cgroup.kill: freeze/SIGKILL/thaw rounds, and plain rounds without a freezer', { skip: isRoot && !hasV1Freezer() ? 'no v1 freezer' : false }, async () => {
    // Hide cgroup2 from the layout so that the v1 manager has no cgroup.kill and must use
    // the v1 freezer; then hide the freezer too so that it signals unfrozen tasks.
    const v1Only: CgroupLayout = { ...layout, mode: 'v1', unifiedMount: null, unifiedControllers: new Set() };
    const noFreezer: CgroupLayout = { ...v1Only, v1Mounts: new Map([...layout.v1Mounts].filter(([c]) => c !== 'freezer')) };
    const prev = manager;
    for (const l of [v1Only, noFreezer]) {
      manager = cgroupManagerFor(l, cgroupNative, { killTimeoutMs: 5000, deviceEnforcement: 'auto' });
      try {
        await underParent(async (parent) => {
          const ctr = `${parent}/pod1/ctr1`;
          await manager.create(ctr, noResources());
          const children = [sleeper(), sleeper()];
          for (const c of children) await manager.attach(ctr, c.pid as number);
          await manager.killAll(`${parent}/pod1`);
          for (const dir of uniqueDirs(manager.paths(ctr))) assert.deepEqual(procs(dir), []);
          if (l === v1Only) assert.equal(read(manager.paths(ctr).freezer as string, 'freezer.state'), 'THAWED');
          for (const c of children) assert.equal(await exited(c), 'SIGKILL');
        });
      } finally {
        manager = prev;
      }
    }
  });

  it('kill-all waits for tasks without holding pool threads', { skip: isRoot && !hasV1Freezer() ? 'no v1 freezer' : false }, async () => {
    // A task in a frozen v1 cgroup cannot die, SIGKILL or not, until it thaws: each kill-all
    // waits for it until its timeout. More of them than libuv's pool has threads (4 here):
    // an fs call must not queue behind their waits.
    const frozen = `${layout.v1Mounts.get('freezer')}/nodecri-test-${randomBytes(4).toString('hex')}`;
    fs.mkdirSync(frozen);
    const child = sleeper();
    try {
      fs.writeFileSync(`${frozen}/cgroup.procs`, String(child.pid));
      fs.writeFileSync(`${frozen}/freezer.state`, 'FROZEN');
      const spec: CgroupKillSpec = { killDirs: [], procsDirs: [frozen], freezerDir: null, freezerVersion: 1, timeoutMs: 3000 };
      const order: string[] = [];
      const kills = Array.from({ length: 6 }, () =>
        cgroupNative.cgroupKillAll(spec).then(
          () => order.push('killed'),
          (e: SyscallError) => order.push(e.code ?? 'failed'),
        ),
      );
      await fs.promises.stat(frozen);
      order.push('fs call');
      await Promise.all(kills);
      assert.deepEqual(order, ['fs call', ...kills.map(() => 'EBUSY')]);
    } finally {
      fs.writeFileSync(`${frozen}/freezer.state`, 'THAWED');
      child.kill('SIGKILL');
      await exited(child);
      fs.rmdirSync(frozen);
    }
  });

  it('the v2 manager works on the cgroup2 hierarchy with whatever controllers it offers', { skip: isRoot && !hasCgroup2() ? 'no cgroup2 mount' : false }, async () => {
    // On a pure v2 host this is the real manager; on a hybrid host it is the v2 manager
    // pointed at the unified mount, where only some controllers (here: hugetlb) live.
    const v2Layout: CgroupLayout =
      layout.mode === 'v2'
        ? layout
        : {
            ...layout,
            mode: 'v2',
            v1Mounts: new Map(),
            memswSupported: false,
          };
    const prev = manager;
    manager = cgroupManagerFor(v2Layout, cgroupNative, { killTimeoutMs: 5000, deviceEnforcement: 'auto' });
    try {
      await underParent(async (parent) => {
        const ctr = `${parent}/pod1/ctr1`;
        const offers = (c: string): boolean => v2Layout.unifiedControllers.has(c);
        await manager.create(ctr, {
          ...noResources(),
          hugepageLimits: offers('hugetlb') ? [{ pageSize: '2MB', limit: 6n * MiB }] : [],
          pidsLimit: offers('pids') ? 10 : null,
          cpuShares: offers('cpu') ? 1024 : null,
        });
        const dir = manager.paths(ctr).unified as string;
        if (offers('hugetlb')) assert.equal(read(dir, 'hugetlb.2MB.max'), String(6n * MiB));
        if (offers('pids')) assert.equal(read(dir, 'pids.max'), '10');
        if (offers('cpu')) assert.equal(read(dir, 'cpu.weight'), '39');
        if (!offers('cpu')) await assert.rejects(manager.update(ctr, { ...noResources(), cpuQuota: 1000 }), /cpu controller is not available/);
        const child = sleeper();
        await manager.attach(ctr, child.pid as number);
        assert.deepEqual(procs(dir), [child.pid]);
        const s = await manager.stats(ctr);
        assert.equal(typeof s.cpuUsageNanos, 'bigint'); // cpu.stat is a core file in every v2 cgroup
        await manager.killAll(`${parent}/pod1`); // cgroup.kill
        assert.deepEqual(procs(dir), []);
        assert.equal(await exited(child), 'SIGKILL');
      });
    } finally {
      manager = prev;
    }
  });

  it('remove leaves no directory in any hierarchy, also right after a kill, and is idempotent', () =>
    underParent(async (parent) => {
      const pod = `${parent}/pod1`;
      await manager.create(pod, noResources());
      await manager.create(`${pod}/ctr1`, noResources());
      const child = sleeper();
      await manager.attach(`${pod}/ctr1`, child.pid as number);
      await manager.killAll(pod);
      // No wait for the exit to be reaped: rmdir may see the cgroup busy and must retry.
      await manager.remove(pod);
      for (const dir of [...uniqueDirs(manager.paths(pod)), ...uniqueDirs(manager.paths(`${pod}/ctr1`))]) {
        assert.equal(fs.existsSync(dir), false, `${dir} still exists`);
      }
      await manager.remove(pod);
      assert.equal(await exited(child), 'SIGKILL');
    }));

  it('reports failures with errno and path, and rejects bad input before touching anything', () =>
    underParent(async (parent) => {
      const child = sleeper();
      try {
        await assert.rejects(manager.attach(`${parent}/missing`, child.pid as number), (e: unknown) => {
          assert.ok(e instanceof SyscallError);
          assert.equal(e.code, 'ENOENT');
          assert.match(e.path ?? '', /\/missing$/);
          return true;
        });
      } finally {
        child.kill('SIGKILL');
        await exited(child);
      }
      await assert.rejects(manager.create(`${parent}/bad`, { ...noResources(), memoryLimitBytes: 128n * MiB, memorySwapLimitBytes: 64n * MiB }), CgroupConfigError);
      for (const d of uniqueDirs(manager.paths(parent))) assert.equal(fs.existsSync(d), false);
      // A limit below what the kernel accepts is the kernel's EINVAL, as the caller's bad
      // input naming the resource, the file and the errno.
      await manager.create(`${parent}/pod1`, noResources());
      await assert.rejects(
        manager.update(`${parent}/pod1`, { ...noResources(), cpuQuota: 10 }),
        (e: unknown) => e instanceof CgroupConfigError && e.field === 'cpuQuota' && /^cpuQuota: "10" refused by the kernel for cpu\.(cfs_quota_us|max) \(EINVAL\)$/.test(e.message),
      );
    }));
});
