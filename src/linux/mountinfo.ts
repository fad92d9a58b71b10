/**
 * The one reader of /proc/<pid>/mountinfo (proc(5)). Each line is
 *
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   id parent maj:min root mount-point options [optional fields...] - fstype source super-options
 *
 * The optional fields are zero or more, ended by a lone "-". The kernel escapes space, tab,
 * newline and backslash in paths as three octal digits ("\040"), so a field never holds a
 * space and splitting on spaces is exact.
 */
import fsp from 'node:fs/promises';

export interface MountInfoEntry {
  mountId: number;
  parentId: number;
  /** "major:minor" of the filesystem's device */
  device: string;
  /** the directory of the filesystem mounted here (not "/" for a bind mount of a subdirectory) */
  root: string;
  mountPoint: string;
  /** per-mount options: rw, nosuid, relatime... */
  options: string[];
  /** optional fields: shared:N, master:N, propagate_from:N, unbindable */
  optional: string[];
  fstype: string;
  source: string;
  /** per-superblock options */
  superOptions: string[];
}

/** "\040" -> " " (and so on for tab, newline, backslash). */
export function unescapeMountInfo(s: string): string {
  return s.replace(/\\([0-3][0-7]{2})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

const list = (s: string | undefined): string[] => (s ?? '').split(',').filter((o) => o !== '');

/** Every well-formed line of a mountinfo text, in order; malformed lines are skipped. */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    // The separator comes after the six fixed fields and before fstype and source.
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 3) continue;
    out.push({
      mountId: Number(f[0]),
      parentId: Number(f[1]),
      device: f[2]!,
      root: unescapeMountInfo(f[3]!),
      mountPoint: unescapeMountInfo(f[4]!),
      options: list(f[5]),
      optional: f.slice(6, sep),
      fstype: f[sep + 1]!,
      source: unescapeMountInfo(f[sep + 2]!),
      superOptions: list(f[sep + 3]),
    });
  }
  return out;
}

/** The mount table of this process's mount namespace (a small procfs read on the pool). */
export async function readMountInfo(file = '/proc/self/mountinfo'): Promise<MountInfoEntry[]> {
  return parseMountInfo(await fsp.readFile(file, 'utf8'));
}

/** The mount a path is on: the longest mount point containing it, the last (topmost) of equals. */
export function mountOf<E extends Pick<MountInfoEntry, 'mountPoint'>>(entries: readonly E[], p: string): E | null {
  let best: E | null = null;
  for (const e of entries) {
    const mp = e.mountPoint;
    const contains = mp === '/' || p === mp || p.startsWith(`${mp}/`);
    if (contains && (!best || mp.length >= best.mountPoint.length)) best = e;
  }
  return best;
}
