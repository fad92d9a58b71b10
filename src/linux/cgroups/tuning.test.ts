import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroup2Mounts } from './tuning';

test('cgroup2 mounts and their super options come from mountinfo', () => {
  const text = [
    '31 25 0:27 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate',
    '42 31 0:39 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  ].join('\n');
  assert.deepEqual(cgroup2Mounts(text), [{ mountPoint: '/sys/fs/cgroup/unified', superOptions: ['rw', 'nsdelegate'] }]);
});
