import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CgroupMount, classifyMounts, modeOf } from './detect';

const v1 = (mountPoint: string, opts: string, root = '/'): CgroupMount => ({ mountPoint, root, fstype: 'cgroup', superOptions: ['rw', ...opts.split(',')] });
const v2 = (mountPoint: string, root = '/'): CgroupMount => ({ mountPoint, root, fstype: 'cgroup2', superOptions: ['rw', 'nsdelegate'] });

describe('classifyMounts', () => {
  it('reads a hybrid host (controllers on v1, cgroup2 at unified)', () => {
    const { v1Mounts, unifiedMount } = classifyMounts([
      v1('/sys/fs/cgroup/cpu', 'cpu'),
      v1('/sys/fs/cgroup/cpuacct', 'cpuacct'),
      v1('/sys/fs/cgroup/memory', 'memory'),
      v1('/sys/fs/cgroup/systemd', 'name=systemd'),
      v2('/sys/fs/cgroup/unified'),
    ]);
    assert.deepEqual(
      [...v1Mounts],
      [
        ['cpu', '/sys/fs/cgroup/cpu'],
        ['cpuacct', '/sys/fs/cgroup/cpuacct'],
        ['memory', '/sys/fs/cgroup/memory'],
      ],
    );
    assert.equal(unifiedMount, '/sys/fs/cgroup/unified');
    assert.equal(modeOf(v1Mounts, unifiedMount), 'hybrid');
  });
  it('maps co-mounted controllers to the same mount', () => {
    const { v1Mounts } = classifyMounts([v1('/sys/fs/cgroup/cpu,cpuacct', 'cpu,cpuacct'), v1('/sys/fs/cgroup/net_cls,net_prio', 'net_cls,net_prio')]);
    assert.equal(v1Mounts.get('cpu'), '/sys/fs/cgroup/cpu,cpuacct');
    assert.equal(v1Mounts.get('cpuacct'), '/sys/fs/cgroup/cpu,cpuacct');
    assert.equal(modeOf(v1Mounts, null), 'v1');
  });
  it('reads a pure v2 host', () => {
    const { v1Mounts, unifiedMount } = classifyMounts([v2('/sys/fs/cgroup')]);
    assert.equal(modeOf(v1Mounts, unifiedMount), 'v2');
    assert.equal(unifiedMount, '/sys/fs/cgroup');
  });
  it('prefers a mount of the hierarchy root over a bind mount of a sub-cgroup', () => {
    const { v1Mounts, unifiedMount } = classifyMounts([
      v1('/mnt/sub', 'memory', '/kubepods'),
      v1('/sys/fs/cgroup/memory', 'memory'),
      v2('/mnt/u', '/x'),
      v2('/sys/fs/cgroup/unified'),
    ]);
    assert.equal(v1Mounts.get('memory'), '/sys/fs/cgroup/memory');
    assert.equal(unifiedMount, '/sys/fs/cgroup/unified');
  });
  it('ignores mounts that are not cgroups', () => {
    const tmpfs: CgroupMount = { mountPoint: '/sys/fs/cgroup', root: '/', fstype: 'tmpfs', superOptions: ['rw', 'memory'] };
    const { v1Mounts, unifiedMount } = classifyMounts([tmpfs, v1('/sys/fs/cgroup/pids', 'pids')]);
    assert.deepEqual([...v1Mounts], [['pids', '/sys/fs/cgroup/pids']]);
    assert.equal(unifiedMount, null);
  });
  it('a host without cgroups is an error', () => {
    assert.throws(() => modeOf(new Map(), null), /no cgroup hierarchy/);
  });
});
