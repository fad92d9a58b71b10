/**
 * Mounts against the real kernel (root): the pod shm tmpfs, overlay with 2 and 500 lower
 * layers (beyond mount(2)'s one-page option limit), read-only and recursive bind mounts,
 * idempotent unmount, and errors that name the path and leave nothing mounted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { inTempDir as inTempDirChecked } from '../helpers/leaks';
import { SyscallError } from '../../src/native/errors';
import { bindMount, mountOverlay, mountTmpfs, shmTmpfsOptions, unmount } from '../../src/native/mounts';
import { mountTable } from '../helpers/mountinfo';

const inTempDir = (body: (dir: string) => Promise<void>) => inTempDirChecked('ncri-mnt-', body);

interface MountInfo {
  mountPoint: string;
  mountOptions: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

function mountInfo(): MountInfo[] {
  return mountTable().map((m) => ({ mountPoint: m.mountPoint, mountOptions: m.options, fsType: m.fstype, source: m.source, superOptions: m.superOptions }));
}

function mountsAt(p: string): MountInfo[] {
  return mountInfo().filter((m) => m.mountPoint === p);
}

function mountsUnder(prefix: string): MountInfo[] {
  return mountInfo().filter((m) => m.mountPoint === prefix || m.mountPoint.startsWith(`${prefix}/`));
}

async function mkdirs(...dirs: string[]): Promise<void> {
  for (const d of dirs) await fs.mkdir(d, { recursive: true });
}

test('shm: a 64 MiB tmpfs with nosuid,nodev,noexec and mode 1777, then unmounted', async () => {
  await inTempDir(async (dir) => {
    const shm = path.join(dir, 'shm');
    await mkdirs(shm);
    await mountTmpfs(shm, shmTmpfsOptions(64n * 1024n * 1024n));
    try {
      const [m] = mountsAt(shm);
      assert.ok(m, 'tmpfs is mounted');
      assert.equal(m.fsType, 'tmpfs');
      for (const o of ['rw', 'nosuid', 'nodev', 'noexec']) assert.ok(m.mountOptions.includes(o), `${o} in ${m.mountOptions.join(',')}`);
      assert.ok(m.superOptions.includes('size=65536k'), m.superOptions.join(','));
      const st = await fs.statfs(shm);
      assert.equal(st.bsize * st.blocks, 64 * 1024 * 1024);
      // (tmpfs lists mode= in mountinfo only when it is not the default 1777.)
      assert.equal((await fs.stat(shm)).mode & 0o7777, 0o1777);
      await fs.writeFile(path.join(shm, 'x'), 'data');
    } finally {
      await unmount(shm, { detach: false });
    }
    assert.deepEqual(mountsAt(shm), []);
    await unmount(shm, { detach: false }); // not mounted: resolves
    await fs.rmdir(shm);
  });
});

test('tmpfs: readonly flag and default size; a missing target names the path', async () => {
  await inTempDir(async (dir) => {
    const t = path.join(dir, 't');
    await mkdirs(t);
    await mountTmpfs(t, { sizeBytes: null, mode: 0o755, flags: { nosuid: false, nodev: false, noexec: false, readonly: true } });
    try {
      assert.ok(mountsAt(t)[0].mountOptions.includes('ro'));
      await assert.rejects(fs.writeFile(path.join(t, 'x'), ''), { code: 'EROFS' });
    } finally {
      await unmount(t, { detach: false });
    }
    await fs.rmdir(t);
    const missing = path.join(dir, 'missing');
    await assert.rejects(mountTmpfs(missing, shmTmpfsOptions(1024n * 1024n)), (e: unknown) => {
      assert.ok(e instanceof SyscallError);
      assert.equal(e.code, 'ENOENT');
      assert.equal(e.syscall, 'mount');
      assert.equal(e.path, missing);
      return true;
    });
  });
});

/** Layer i (0 = topmost) holds `only-<i>` and `shadow` containing `<i>`. */
async function makeLayers(root: string, n: number): Promise<string[]> {
  const layers: string[] = [];
  for (let i = 0; i < n; i++) {
    // Long-ish names on purpose: 500 of them make a lowerdir= string of several pages.
    const d = path.join(root, 'layers', `sha256-${String(i).padStart(4, '0')}-${'0123456789abcdef'.repeat(2)}`);
    await fs.mkdir(d, { recursive: true });
    await fs.writeFile(path.join(d, `only-${i}`), `${i}`);
    await fs.writeFile(path.join(d, 'shadow'), `${i}`);
    layers.push(d);
  }
  return layers;
}

async function checkMergedView(merged: string, upper: string, layers: string[]): Promise<void> {
  const last = layers.length - 1;
  assert.equal(await fs.readFile(path.join(merged, 'only-0'), 'utf8'), '0'); // highest layer
  assert.equal(await fs.readFile(path.join(merged, `only-${last}`), 'utf8'), `${last}`); // lowest
  assert.equal(await fs.readFile(path.join(merged, 'shadow'), 'utf8'), '0'); // higher shadows lower
  assert.equal((await fs.readdir(merged)).length, layers.length + 1);
  // The upper layer takes writes; the lower layers stay as they were.
  await fs.writeFile(path.join(merged, 'new'), 'written');
  await fs.writeFile(path.join(merged, `only-${last}`), 'changed');
  assert.equal(await fs.readFile(path.join(upper, 'new'), 'utf8'), 'written');
  assert.equal(await fs.readFile(path.join(upper, `only-${last}`), 'utf8'), 'changed');
  assert.equal(await fs.readFile(path.join(layers[last], `only-${last}`), 'utf8'), `${last}`);
}

for (const n of [2, 500]) {
  test(`overlay with ${n} lower dirs shows the merged view and takes writes in the upper`, async () => {
    await inTempDir(async (dir) => {
      const layers = await makeLayers(dir, n);
      const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => path.join(dir, d));
      await mkdirs(upper, work, merged);
      if (n === 500) assert.ok(`lowerdir=${layers.join(':')}`.length > 4096, 'beyond one page of mount(2) options');
      await mountOverlay(layers, upper, work, merged, { volatile: false, readonly: false });
      try {
        const [m] = mountsAt(merged);
        assert.equal(m.fsType, 'overlay');
        await checkMergedView(merged, upper, layers);
      } finally {
        await unmount(merged, { detach: false });
      }
      assert.deepEqual(mountsUnder(dir), []);
      await fs.rm(path.join(dir, 'layers'), { recursive: true });
      for (const d of [upper, work, merged]) await fs.rm(d, { recursive: true });
    });
  });
}

test('overlay: volatile, and read-only without an upper layer', async () => {
  await inTempDir(async (dir) => {
    const layers = await makeLayers(dir, 2);
    const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => path.join(dir, d));
    await mkdirs(upper, work, merged);
    await mountOverlay(layers, upper, work, merged, { volatile: true, readonly: false });
    try {
      // Linux 6.x shows "volatile" as fsync=volatile.
      const opts = mountsAt(merged)[0].superOptions;
      assert.ok(opts.includes('volatile') || opts.includes('fsync=volatile'), opts.join(','));
      await fs.writeFile(path.join(merged, 'v'), 'v');
    } finally {
      await unmount(merged, { detach: false });
    }
    await mountOverlay(layers, null, null, merged, { volatile: false, readonly: true });
    try {
      assert.equal(await fs.readFile(path.join(merged, 'shadow'), 'utf8'), '0');
      await assert.rejects(fs.writeFile(path.join(merged, 'x'), ''), { code: 'EROFS' });
    } finally {
      await unmount(merged, { detach: false });
    }
    await fs.rm(path.join(dir, 'layers'), { recursive: true });
    for (const d of [upper, work, merged]) await fs.rm(d, { recursive: true });
  });
});

test('overlay: a missing lower dir is named in the error and nothing is mounted', async () => {
  await inTempDir(async (dir) => {
    for (const n of [2, 500]) {
      const layers = await makeLayers(dir, n);
      const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => path.join(dir, d));
      await mkdirs(upper, work, merged);
      const missing = path.join(dir, 'layers', 'not-there');
      const lower = [...layers.slice(0, n - 2), missing, layers[n - 1]]; // still n layers
      await assert.rejects(mountOverlay(lower, upper, work, merged, { volatile: false, readonly: false }), (e: unknown) => {
        assert.ok(e instanceof SyscallError, String(e));
        assert.equal(e.code, 'ENOENT');
        assert.equal(e.path, missing);
        assert.ok(e.message.includes(missing), e.message);
        return true;
      });
      assert.deepEqual(mountsUnder(dir), []);
      // A missing upper dir is named too.
      const noUpper = path.join(dir, 'no-upper');
      await assert.rejects(mountOverlay(layers, noUpper, work, merged, { volatile: false, readonly: false }), { code: 'ENOENT', path: noUpper });
      assert.deepEqual(mountsUnder(dir), []);
      await fs.rm(path.join(dir, 'layers'), { recursive: true });
      for (const d of [upper, work, merged]) await fs.rm(d, { recursive: true });
    }
    await assert.rejects(mountOverlay([], null, null, path.join(dir, 'm'), { volatile: false, readonly: false }), RangeError);
  });
});

test('bind mount read-only refuses writes (EROFS) and keeps the flags it inherited', async () => {
  await inTempDir(async (dir) => {
    const [src, target] = ['src', 'target'].map((d) => path.join(dir, d));
    await mkdirs(src, target);
    // A nosuid,nodev source: a plain MS_BIND|MS_REMOUNT|MS_RDONLY would drop both.
    await mountTmpfs(src, { sizeBytes: 1024n * 1024n, mode: 0o755, flags: { nosuid: true, nodev: true, noexec: false, readonly: false } });
    try {
      await fs.writeFile(path.join(src, 'file'), 'hello');
      await bindMount(src, target, { readonly: true, recursive: false, propagation: 'private' });
      try {
        const [m] = mountsAt(target);
        for (const o of ['ro', 'nosuid', 'nodev']) assert.ok(m.mountOptions.includes(o), `${o} in ${m.mountOptions.join(',')}`);
        assert.equal(await fs.readFile(path.join(target, 'file'), 'utf8'), 'hello');
        await assert.rejects(fs.writeFile(path.join(target, 'file'), 'x'), { code: 'EROFS' });
        await assert.rejects(fs.writeFile(path.join(target, 'new'), 'x'), { code: 'EROFS' });
        await fs.writeFile(path.join(src, 'file'), 'still writable at the source');
        assert.equal(await fs.readFile(path.join(target, 'file'), 'utf8'), 'still writable at the source');
      } finally {
        await unmount(target, { detach: false });
      }
    } finally {
      await unmount(src, { detach: false });
    }
    await fs.rmdir(src);
    await fs.rmdir(target);
  });
});

test('recursive read-only bind mount makes submounts read-only too; detach takes them all', async () => {
  await inTempDir(async (dir) => {
    const [src, target] = ['src', 'target'].map((d) => path.join(dir, d));
    const sub = path.join(src, 'sub');
    await mkdirs(sub, target);
    await mountTmpfs(sub, { sizeBytes: 1024n * 1024n, mode: 0o755, flags: { nosuid: true, nodev: true, noexec: true, readonly: false } });
    try {
      await bindMount(src, target, { readonly: true, recursive: true, propagation: 'rprivate' });
      assert.equal(mountsUnder(target).length, 2);
      await assert.rejects(fs.writeFile(path.join(target, 'x'), ''), { code: 'EROFS' });
      await assert.rejects(fs.writeFile(path.join(target, 'sub', 'x'), ''), { code: 'EROFS' });
      await fs.writeFile(path.join(sub, 'x'), 'ok'); // the source submount is still writable
      await unmount(target, { detach: true });
      assert.deepEqual(mountsUnder(target), []);
      await fs.rm(path.join(sub, 'x'));
    } finally {
      await unmount(target, { detach: true });
      await unmount(sub, { detach: false });
    }
    await fs.rm(src, { recursive: true });
    await fs.rmdir(target);
  });
});

test('bind mount: a writable bind with propagation, and a missing source named in the error', async () => {
  await inTempDir(async (dir) => {
    const [src, target] = ['src', 'target'].map((d) => path.join(dir, d));
    await mkdirs(src, target);
    await bindMount(src, target, { readonly: false, recursive: false, propagation: 'shared' });
    try {
      const [m] = mountsAt(target);
      assert.ok(m.mountOptions.includes('rw'));
      const optional = mountTable().find((e) => e.mountPoint === target)?.optional ?? [];
      assert.ok(
        optional.some((o) => /^shared:\d+$/.test(o)),
        `${target} is shared: ${optional.join(' ')}`,
      );
      await fs.writeFile(path.join(target, 'f'), 'x');
      assert.equal(await fs.readFile(path.join(src, 'f'), 'utf8'), 'x');
      await fs.rm(path.join(src, 'f'));
    } finally {
      await unmount(target, { detach: false });
    }
    const missing = path.join(dir, 'missing-src');
    await assert.rejects(bindMount(missing, target, { readonly: true, recursive: false, propagation: null }), (e: unknown) => {
      assert.ok(e instanceof SyscallError);
      assert.equal(e.code, 'ENOENT');
      assert.equal(e.path, missing);
      assert.match(e.message, /^bind mount: mount .*missing-src: No such file or directory$/);
      return true;
    });
    assert.deepEqual(mountsUnder(dir), []);
    await fs.rmdir(src);
    await fs.rmdir(target);
  });
});

test('unmount is idempotent: not mounted and missing targets resolve, a busy one rejects', async () => {
  await inTempDir(async (dir) => {
    const t = path.join(dir, 't');
    await mkdirs(t);
    await unmount(t, { detach: false }); // a plain directory: EINVAL from the kernel
    await unmount(path.join(dir, 'missing'), { detach: true }); // ENOENT
    await mountTmpfs(t, shmTmpfsOptions(1024n * 1024n));
    const fh = await fs.open(path.join(t, 'busy'), 'w');
    try {
      await assert.rejects(unmount(t, { detach: false }), { code: 'EBUSY', syscall: 'umount2', path: t });
    } finally {
      await fh.close();
    }
    await unmount(t, { detach: false });
    assert.deepEqual(mountsAt(t), []);
    await fs.rmdir(t);
  });
});
