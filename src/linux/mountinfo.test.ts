import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mountOf, parseMountInfo, readMountInfo, unescapeMountInfo } from './mountinfo';

describe('mountinfo', { timeout: 10_000 }, () => {
  const text = [
    '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
    '30 22 0:25 /sub\\134dir /mnt/with\\040space rw master:7 propagate_from:3 - tmpfs my\\011src rw,size=10k',
    '31 22 0:26 / /mnt rw - tmpfs tmpfs rw',
    '32 31 0:27 / /mnt rw shared:9 - tmpfs tmpfs rw',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,nosuid,relatime - cgroup2 cgroup2 rw,nsdelegate',
    '42 31 0:39 / /weird rw - fuse.x - rw',
    'garbage line',
    '',
  ].join('\n');

  it('parses every field of a line', () => {
    assert.deepEqual(parseMountInfo(text)[0], {
      mountId: 22,
      parentId: 1,
      device: '8:1',
      root: '/',
      mountPoint: '/',
      options: ['rw', 'relatime'],
      optional: ['shared:1'],
      fstype: 'ext4',
      source: '/dev/sda1',
      superOptions: ['rw'],
    });
  });

  it('decodes octal escapes in paths and source', () => {
    const e = parseMountInfo(text)[1]!;
    assert.equal(e.mountPoint, '/mnt/with space');
    assert.equal(e.root, '/sub\\dir');
    assert.equal(e.source, 'my\tsrc');
    assert.equal(unescapeMountInfo('a\\012b\\040c\\134'), 'a\nb c\\');
    assert.equal(unescapeMountInfo('\\400 \\08'), '\\400 \\08');
  });

  it('reads zero or more optional fields up to the separator', () => {
    const e = parseMountInfo(text);
    assert.deepEqual(e[1]?.optional, ['master:7', 'propagate_from:3']);
    assert.deepEqual(e[2]?.optional, []);
    assert.deepEqual(e[4]?.superOptions, ['rw', 'nsdelegate']);
  });

  it('takes the first "-" after the fixed fields as the separator; a source of "-" is kept', () => {
    const e = parseMountInfo(text)[5]!;
    assert.deepEqual([e.mountPoint, e.options, e.optional, e.fstype, e.source, e.superOptions], ['/weird', ['rw'], [], 'fuse.x', '-', ['rw']]);
  });

  it('skips malformed lines', () => {
    assert.equal(parseMountInfo(text).length, 6);
    assert.deepEqual(parseMountInfo('1 2 3 4 5 6 - x'), []);
  });

  it('finds the topmost, longest mount containing a path', () => {
    const e = parseMountInfo(text);
    assert.deepEqual(mountOf(e, '/mnt/a/b')?.optional, ['shared:9']);
    assert.deepEqual(mountOf(e, '/mnt/with space/x')?.optional, ['master:7', 'propagate_from:3']);
    assert.equal(mountOf(e, '/mntx')?.mountPoint, '/');
  });

  it("reads this process's table", async () => {
    const e = await readMountInfo();
    assert.ok(e.some((m) => m.mountPoint === '/'));
    assert.ok(e.some((m) => m.fstype === 'proc'));
  });
});
