/**
 * Removing a directory that may still hold mounts (a pod's run dir with its namespace
 * pins and shm, a container's with its rootfs overlay): every mount at or under it is
 * detached first, deepest first, and only then is the tree removed, so that a removal
 * never reaches into what a mount shows (the pod's shm, an image's layers).
 */
import fsp from 'node:fs/promises';
import { unmount } from '../native/mounts';
import { readMountInfo } from './mountinfo';

/** Mount points from /proc/self/mountinfo (octal escapes decoded). */
export async function mountPoints(): Promise<Set<string>> {
  return new Set((await readMountInfo()).map((m) => m.mountPoint));
}

/** Mount points at or under `dir`, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const all = await mountPoints();
  return [...all].filter((m) => m === dir || m.startsWith(prefix)).sort((a, b) => b.length - a.length);
}

/** Detaches every mount at or under `dir` (stacked mounts included), then removes it whole. Idempotent. */
export async function removeTree(dir: string): Promise<void> {
  for (let round = 0; round < 8; round++) {
    const mounts = await mountsUnder(dir);
    if (mounts.length === 0) break;
    for (const m of mounts) await unmount(m, { detach: true });
  }
  const left = await mountsUnder(dir);
  if (left.length > 0) throw new Error(`cannot remove ${dir}: still mounted at ${left.join(', ')}`);
  await fsp.rm(dir, { recursive: true, force: true });
}

/** Unmounts `target` (lazily, and every mount stacked on it) if it is a mount point. */
export async function unmountIfMounted(target: string): Promise<void> {
  for (let round = 0; round < 8; round++) {
    if (!(await mountPoints()).has(target)) return;
    await unmount(target, { detach: true });
  }
}
