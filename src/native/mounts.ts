/**
 * Mounts from the addon: the pod shm tmpfs, bind mounts, the overlay rootfs, unmount. Every
 * call returns a Promise and runs on a libuv pool thread: mount(2) and umount2(2) can sleep
 * in the kernel, so they never run on the event loop (style rule 7). Failures reject with a
 * SyscallError naming the path, syscall and errno.
 */
import path from 'node:path';
import { nativeFunction } from './binding';

export interface TmpfsFlags {
  nosuid: boolean;
  nodev: boolean;
  noexec: boolean;
  readonly: boolean;
}

export interface TmpfsOptions {
  /** Size limit in bytes (rounded up to pages); null for the kernel default, half of RAM. */
  sizeBytes: bigint | null;
  /** Permission bits of the root directory, e.g. 0o1777. */
  mode: number;
  flags: TmpfsFlags;
}

export type Propagation = 'private' | 'rprivate' | 'slave' | 'rslave' | 'shared' | 'rshared';

export interface BindMountOptions {
  /** Read-only; with `recursive`, every submount too. */
  readonly: boolean;
  /** MS_REC: bring the submounts of `src` along. */
  recursive: boolean;
  /** Propagation to set on the new mount; null leaves what it inherited. */
  propagation: Propagation | null;
}

export interface OverlayOptions {
  /** overlayfs "volatile": skip syncs to the upper layer (a crash can lose or corrupt it). */
  volatile: boolean;
  readonly: boolean;
}

export interface UnmountOptions {
  /** MNT_DETACH: detach now, free when no longer busy. */
  detach: boolean;
}

/** overlayfs takes at most this many lower layers (OVL_MAX_STACK). */
export const maxOverlayLowerDirs = 500;

type OverlayMethod = 'auto' | 'mount' | 'fsconfig';

const nativeTmpfs = nativeFunction<(target: string, opts: TmpfsOptions) => Promise<void>>('mountTmpfs');
const nativeBind = nativeFunction<(src: string, target: string, opts: BindMountOptions) => Promise<void>>('mountBind');
const nativeOverlay =
  nativeFunction<(lowerDirs: string[], upperDir: string | null, workDir: string | null, target: string, opts: OverlayOptions & { method: OverlayMethod }) => Promise<void>>(
    'mountOverlay',
  );
const nativeUnmount = nativeFunction<(target: string, opts: UnmountOptions) => Promise<void>>('mountUnmount');

function absolute(what: string, p: string): void {
  if (!path.isAbsolute(p)) throw new TypeError(`${what} ${p} is not an absolute path`);
}

/** The options of a pod's /dev/shm: nosuid, nodev, noexec, mode 1777, the given size. */
export function shmTmpfsOptions(sizeBytes: bigint): TmpfsOptions {
  return { sizeBytes, mode: 0o1777, flags: { nosuid: true, nodev: true, noexec: true, readonly: false } };
}

/** Mounts a tmpfs on `target` (which must exist). */
export async function mountTmpfs(target: string, opts: TmpfsOptions): Promise<void> {
  absolute('tmpfs target', target);
  return nativeTmpfs(target, opts);
}

/**
 * Bind-mounts `src` on `target`, then makes it read-only (MS_BIND|MS_REMOUNT|MS_RDONLY,
 * keeping the nosuid/nodev/noexec it inherited; mount_setattr for a recursive one) and sets
 * its propagation. If a later step fails the bind mount is undone.
 */
export async function bindMount(src: string, target: string, opts: BindMountOptions): Promise<void> {
  absolute('bind source', src);
  absolute('bind target', target);
  return nativeBind(src, target, opts);
}

/**
 * Mounts an overlay on `target`. `lowerDirs[0]` is the topmost lower layer (overlayfs order:
 * it shadows lowerDirs[1], and so on); up to 500. `upperDir` and `workDir` are both set or
 * both null (then the mount is read-only and needs at least two lower layers).
 *
 * On Linux >= 6.8 this uses the new mount API with one fsconfig("lowerdir+") per layer, so
 * the one-page limit of mount(2)'s option string does not apply (500 layers of ordinary
 * paths need several pages); on older kernels it uses mount(2) and fails with E2BIG when the
 * options do not fit. A failure leaves nothing mounted.
 */
export async function mountOverlay(lowerDirs: string[], upperDir: string | null, workDir: string | null, target: string, opts: OverlayOptions): Promise<void> {
  if (lowerDirs.length === 0 || lowerDirs.length > maxOverlayLowerDirs) {
    throw new RangeError(`overlay needs 1 to ${maxOverlayLowerDirs} lower dirs, not ${lowerDirs.length}`);
  }
  if ((upperDir === null) !== (workDir === null)) throw new TypeError('overlay upperDir and workDir go together');
  for (const d of lowerDirs) absolute('overlay lower dir', d);
  if (upperDir !== null) absolute('overlay upper dir', upperDir);
  if (workDir !== null) absolute('overlay work dir', workDir);
  absolute('overlay target', target);
  return nativeOverlay([...lowerDirs], upperDir, workDir, target, { volatile: opts.volatile, readonly: opts.readonly, method: 'auto' });
}

/**
 * umount2(target). Idempotent: a target that is not a mount point (EINVAL) or does not exist
 * (ENOENT) resolves, so teardown can be retried. Other errors (EBUSY without `detach`)
 * reject. Symlinks are not followed (UMOUNT_NOFOLLOW).
 */
export function unmount(target: string, opts: UnmountOptions): Promise<void> {
  return nativeUnmount(target, opts);
}
