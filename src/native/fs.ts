/**
 * File operations Node's fs lacks, for unpacking image layers: device nodes and overlay
 * whiteouts, extended attributes on the entry itself (never a symlink's target), and a
 * filesystem flush before a layer is committed. All run off the event loop.
 */
import { nativeFunction } from './binding';

/** mknod(2); `mode` carries the file type (S_IFCHR, S_IFBLK, S_IFIFO) and permission bits. */
export const mknod = nativeFunction<(path: string, mode: number, major: number, minor: number) => Promise<void>>('fsMknod');
/** lsetxattr(2). */
export const lsetxattr = nativeFunction<(path: string, name: string, value: Buffer) => Promise<void>>('fsLsetxattr');
/** lgetxattr(2); null when the attribute is not set. */
export const lgetxattr = nativeFunction<(path: string, name: string) => Promise<Buffer | null>>('fsLgetxattr');
/** syncfs(2) of the filesystem holding the directory `path`. */
export const syncfs = nativeFunction<(path: string) => Promise<void>>('fsSyncfs');
/**
 * An exclusive flock on `path` (created 0600 with our pid in it), held as long as the fd is
 * open; `inheritedFd` is the fd of the same lock a previous image of this process held
 * across its execve. `fd` is null when another process holds it: `holder` is its pid.
 */
export const lockExclusive = nativeFunction<(path: string, inheritedFd: number | null) => Promise<{ fd: number | null; holder: string }>>('fsLockExclusive');

export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
