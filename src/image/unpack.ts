/**
 * Writes a layer's tar entries into an empty directory with their full semantics (modes,
 * owners, mtimes, symlinks, hard links, device nodes, xattrs), converting OCI whiteouts to
 * the form overlayfs reads: `.wh.NAME` becomes a 0:0 character device NAME, and
 * `.wh..wh..opq` the xattr trusted.overlay.opaque=y on its directory. Entries that would
 * write outside the directory are refused: `..` components, paths through a symlink the
 * layer created, hard links to anything the layer did not create itself, and whiteouts that
 * name no file (`.wh.`, `.wh..`, `.wh...`: the directory itself or its parent).
 *
 * Nothing on disk is followed: the directory starts empty and every parent of an entry is
 * looked up in what this layer created, so no symlink (absolute, relative or chained) is
 * ever traversed. This is containerd's rule (pkg/archive/tar.go: paths resolved under the
 * root, validateWhiteout) made stricter: a path through a symlink is refused, not resolved.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { lsetxattr, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from '../native/fs';
import { invalidArgument, type RuntimeError } from '../domain/errors';
import type { TarEntry, TarHeader } from './tar';

const WH_PREFIX = '.wh.';
const WH_OPAQUE = '.wh..wh..opq';
const WH_META = '.wh..wh.';
export const OPAQUE_XATTR = 'trusted.overlay.opaque';

export type Whiteout =
  | { kind: 'opaque'; dir: string }
  | { kind: 'whiteout'; path: string }
  /** aufs bookkeeping (`.wh..wh.plnk` and the like): not part of the image */
  | { kind: 'ignore' };

/**
 * What the (already normalized) layer path `rel` means as a whiteout, or null for a plain
 * entry. Throws for a whiteout that names no file in its directory: `.wh.` would delete the
 * directory itself (the layer's root at the top), `.wh..` the same, `.wh...` its parent.
 */
export function whiteoutOf(rel: string): Whiteout | null {
  const base = path.posix.basename(rel);
  if (!base.startsWith(WH_PREFIX)) return null;
  const dir = path.posix.dirname(rel);
  if (base === WH_OPAQUE) return { kind: 'opaque', dir: dir === '.' ? '' : dir };
  if (base.startsWith(WH_META)) return { kind: 'ignore' };
  const name = base.slice(WH_PREFIX.length);
  if (name === '' || name === '.' || name === '..') throw escape(`whiteout ${JSON.stringify(rel)} names no file`);
  return { kind: 'whiteout', path: dir === '.' ? name : `${dir}/${name}` };
}

/**
 * A tar name as a relative path inside the layer ("./a//b/" → "a/b"; "/" or "." → "").
 * Throws for names with a ".." component.
 */
export function layerPath(name: string, what = 'entry'): string {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw escape(`tar ${what} ${JSON.stringify(name)} has a ".." component`);
  return parts.join('/');
}

function escape(message: string): RuntimeError {
  return invalidArgument(`refusing layer: ${message}`);
}

type Kind = 'dir' | 'symlink' | 'other';

export interface UnpackStats {
  /** bytes of regular-file data */
  size: number;
  /** entries created */
  inodes: number;
}

interface DirMeta {
  abs: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
}

/** Unpacks `entries` into the empty directory `dest`. */
export async function unpackLayer(entries: AsyncIterable<TarEntry>, dest: string): Promise<UnpackStats> {
  // What this layer created, by relative path: every parent is resolved from this map, so
  // nothing on disk is followed while writing.
  const known = new Map<string, Kind>([['', 'dir']]);
  const dirMeta = new Map<string, DirMeta>();
  const stats: UnpackStats = { size: 0, inodes: 0 };
  const abs = (rel: string) => (rel === '' ? dest : path.join(dest, rel));

  const ensureParents = async (rel: string, name: string): Promise<void> => {
    const parts = rel.split('/');
    let cur = '';
    for (let i = 0; i < parts.length - 1; i++) {
      cur = cur === '' ? parts[i] : `${cur}/${parts[i]}`;
      const k = known.get(cur);
      if (k === 'dir') continue;
      if (k === 'symlink') throw escape(`tar entry ${JSON.stringify(name)} goes through the symlink ${JSON.stringify(cur)}`);
      if (k === 'other') await removeKnown(cur);
      await fsp.mkdir(abs(cur), 0o755);
      known.set(cur, 'dir');
      stats.inodes++;
    }
  };

  const removeKnown = async (rel: string): Promise<void> => {
    await fsp.rm(abs(rel), { recursive: true, force: true });
    const prefix = `${rel}/`;
    for (const k of known.keys()) if (k === rel || k.startsWith(prefix)) known.delete(k);
    for (const k of dirMeta.keys()) if (k === rel || k.startsWith(prefix)) dirMeta.delete(k);
  };

  /** Clears the way for a new entry at rel: a later entry replaces an earlier one. */
  const prepare = async (rel: string, h: TarHeader): Promise<boolean> => {
    await ensureParents(rel, h.name);
    const k = known.get(rel);
    if (k === undefined) return false;
    if (k === 'dir' && h.type === 'directory') return true;
    await removeKnown(rel);
    return false;
  };

  const owner = async (p: string, h: TarHeader) => {
    if (h.uid !== 0 || h.gid !== 0) await fsp.lchown(p, h.uid, h.gid);
  };
  const xattrs = async (p: string, h: TarHeader) => {
    for (const [name, value] of h.xattrs) await lsetxattr(p, name, value);
  };

  for await (const { header: h, body } of entries) {
    const rel = layerPath(h.name);
    const wh = whiteoutOf(rel);
    if (wh !== null) {
      if (wh.kind === 'opaque') {
        if (wh.dir !== '' && known.get(wh.dir) !== 'dir') {
          await prepare(wh.dir, { ...h, type: 'directory' });
          await fsp.mkdir(abs(wh.dir), 0o755);
          known.set(wh.dir, 'dir');
          stats.inodes++;
        }
        await lsetxattr(abs(wh.dir), OPAQUE_XATTR, Buffer.from('y'));
      } else if (wh.kind === 'whiteout') {
        await prepare(wh.path, h);
        const p = abs(wh.path);
        await mknod(p, S_IFCHR, 0, 0);
        await owner(p, h);
        known.set(wh.path, 'other');
        stats.inodes++;
      }
      continue;
    }
    if (rel === '') {
      // The layer root itself ("./"): only its metadata matters.
      if (h.type === 'directory') dirMeta.set('', { abs: dest, mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime });
      continue;
    }
    const keep = await prepare(rel, h);
    const p = abs(rel);
    switch (h.type) {
      case 'directory': {
        if (!keep) {
          await fsp.mkdir(p, 0o700);
          known.set(rel, 'dir');
          stats.inodes++;
        }
        await xattrs(p, h);
        // Owner, mode and mtime last: writing children changes a directory's mtime, and a
        // read-only mode must not stop them being written.
        dirMeta.set(rel, { abs: p, mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime });
        break;
      }
      case 'file': {
        const fh = await fsp.open(p, 'wx', 0o600);
        try {
          for await (const chunk of body) {
            let off = 0;
            while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
          }
          if (h.uid !== 0 || h.gid !== 0) await fh.chown(h.uid, h.gid);
          await fh.chmod(h.mode);
          await fh.utimes(h.mtime, h.mtime);
        } finally {
          await fh.close();
        }
        await xattrs(p, h);
        known.set(rel, 'other');
        stats.size += h.size;
        stats.inodes++;
        break;
      }
      case 'link': {
        const target = layerPath(h.linkname, 'hard link target');
        if (known.get(target) !== 'other' && known.get(target) !== 'symlink') {
          throw escape(`hard link ${JSON.stringify(h.name)} points to ${JSON.stringify(h.linkname)}, which is not a file of this layer`);
        }
        await fsp.link(abs(target), p);
        known.set(rel, known.get(target) as Kind);
        break;
      }
      case 'symlink': {
        await fsp.symlink(h.linkname, p);
        await owner(p, h);
        await xattrs(p, h);
        await fsp.lutimes(p, h.mtime, h.mtime);
        known.set(rel, 'symlink');
        stats.inodes++;
        break;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        const type = h.type === 'char' ? S_IFCHR : h.type === 'block' ? S_IFBLK : S_IFIFO;
        await mknod(p, type | h.mode, h.devmajor, h.devminor);
        await owner(p, h);
        await fsp.chmod(p, h.mode); // mknod's mode went through the umask
        await xattrs(p, h);
        await fsp.lutimes(p, h.mtime, h.mtime);
        known.set(rel, 'other');
        stats.inodes++;
        break;
      }
    }
  }
  // Deepest first, so that setting a parent's mtime comes after its children's changes.
  const dirs = [...dirMeta.entries()].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
  for (const [, d] of dirs) {
    if (d.uid !== 0 || d.gid !== 0) await fsp.lchown(d.abs, d.uid, d.gid);
    await fsp.chmod(d.abs, d.mode);
    await fsp.utimes(d.abs, d.mtime, d.mtime);
  }
  return stats;
}
