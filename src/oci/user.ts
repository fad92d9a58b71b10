/**
 * The container process's uid, gid and supplementary groups, resolved against the image's
 * own /etc/passwd and /etc/group (read from the mounted rootfs, with symlinks resolved
 * inside the rootfs so an image cannot make us read a host file).
 *
 * Precedence, as containerd and CRI-O: run_as_username, else run_as_user, else the image's
 * USER (`name`, `uid`, `name:group`, `uid:gid`, `name:gid`, `uid:group`), else root.
 * - A user name must exist in the image's passwd (error naming it); a numeric uid need not
 *   (its gid is then 0, its name unknown).
 * - A group name must exist in the image's group file; a numeric gid need not.
 * - run_as_group replaces the primary gid of the user named by run_as_user or
 *   run_as_username; without either it is refused, as containerd does and as the CRI
 *   conformance suite expects (CRI-O applies it over the image's user instead).
 * - Additional gids: the primary gid first (containerd after CVE-2023-25173, so that
 *   dropping to the user keeps its primary group in the supplementary list), then every
 *   group in the image's /etc/group that lists the user's name as a member (skipped when
 *   supplemental_groups_policy is Strict, per the KEP), then supplemental_groups, each once.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { invalidArgument } from '../domain/errors';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const MAX_ID = 4294967294; // (uid_t)-1 is "no id"

function parseId(s: string): number | null {
  if (!/^\d+$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) && n <= MAX_ID ? n : null;
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4) continue;
    const uid = parseId(f[2]!);
    const gid = parseId(f[3]!);
    if (uid === null || gid === null || f[0] === '') continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] ?? '' });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3) continue;
    const gid = parseId(f[2]!);
    if (gid === null || f[0] === '') continue;
    const members = (f[3] ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter((m) => m !== '');
    out.push({ name: f[0]!, gid, members });
  }
  return out;
}

/**
 * The host path of `p` interpreted inside `root`: every symlink met on the way is resolved
 * as the container would see it (absolute targets from root, `..` stopping at root). The
 * last component may not exist; a missing directory before it is an ENOENT error. Like
 * filepath-securejoin, without the race protection openat2(RESOLVE_IN_ROOT) would give:
 * fine for reading an image's files before the container runs.
 */
export async function resolveInRoot(root: string, p: string): Promise<string> {
  const pending = p.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const c = pending.shift()!;
    if (c === '..') {
      done.pop();
      continue;
    }
    const host = path.join(root, ...done, c);
    let st;
    try {
      st = await fsp.lstat(host);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === 'ENOENT' || code === 'ENOTDIR') && pending.length === 0) {
        // Only the last component may be missing (a file about to be made).
        done.push(c);
        break;
      }
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        // Like the kernel: a missing directory on the way makes the whole path missing
        // (resolving "missing/.." lexically could step onto a host symlink).
        throw Object.assign(new Error(`${p}: no such file or directory in the container rootfs`), { code: 'ENOENT' });
      }
      throw e;
    }
    if (!st.isSymbolicLink()) {
      done.push(c);
      continue;
    }
    if (++links > 40) throw invalidArgument(`too many symbolic links resolving ${p} in the container rootfs`);
    const target = await fsp.readlink(host);
    if (target.startsWith('/')) done.length = 0;
    pending.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
  }
  return path.join(root, ...done);
}

/** A file of the rootfs, or null when it (or a directory on its path) does not exist. */
export async function readRootfsFile(root: string, p: string): Promise<string | null> {
  try {
    return await fsp.readFile(await resolveInRoot(root, p), 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

export interface UserRequest {
  rootfs: string;
  /** run_as_username, "" when unset */
  runAsUsername: string;
  /** run_as_user, null when unset */
  runAsUser: number | null;
  /** run_as_group, null when unset */
  runAsGroup: number | null;
  supplementalGroups: number[];
  /** supplemental_groups_policy Strict: no groups from the image's /etc/group */
  strictGroups: boolean;
  /** the image config's User, null or "" when unset */
  imageUser: string | null;
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** the passwd name of the uid, null when the image has none */
  name: string | null;
  /** the passwd home directory, null when unknown */
  home: string | null;
}

export async function resolveUser(req: UserRequest): Promise<ResolvedUser> {
  if (req.runAsGroup !== null && req.runAsUser === null && req.runAsUsername === '') {
    throw invalidArgument('security_context.run_as_group is set without run_as_user or run_as_username');
  }
  let passwd: PasswdEntry[] | null = null;
  let groups: GroupEntry[] | null = null;
  const getPasswd = async () => (passwd ??= parsePasswd((await readRootfsFile(req.rootfs, '/etc/passwd')) ?? ''));
  const getGroups = async () => (groups ??= parseGroup((await readRootfsFile(req.rootfs, '/etc/group')) ?? ''));

  const byName = async (name: string, what: string): Promise<PasswdEntry> => {
    const e = (await getPasswd()).find((x) => x.name === name);
    if (!e) throw invalidArgument(`${what}: user ${JSON.stringify(name)} not found in the image's /etc/passwd`);
    return e;
  };
  const byUid = async (uid: number) => (await getPasswd()).find((x) => x.uid === uid) ?? null;

  let entry: PasswdEntry | null;
  let uid: number;
  let gid: number;
  if (req.runAsUsername !== '') {
    entry = await byName(req.runAsUsername, 'run_as_username');
    uid = entry.uid;
    gid = entry.gid;
  } else if (req.runAsUser !== null) {
    uid = req.runAsUser;
    entry = await byUid(uid);
    gid = entry?.gid ?? 0;
  } else {
    const spec = (req.imageUser ?? '').trim();
    const colon = spec.indexOf(':');
    const u = colon < 0 ? spec : spec.slice(0, colon);
    const g = colon < 0 ? '' : spec.slice(colon + 1);
    if (u === '') {
      if (g !== '') throw invalidArgument(`image user ${JSON.stringify(spec)}: a group without a user`);
      uid = 0;
      entry = await byUid(0);
      gid = entry?.gid ?? 0;
    } else {
      const n = parseId(u);
      if (n !== null) {
        uid = n;
        entry = await byUid(uid);
        gid = entry?.gid ?? 0;
      } else {
        entry = await byName(u, 'image user');
        uid = entry.uid;
        gid = entry.gid;
      }
    }
    if (g !== '') {
      const ng = parseId(g);
      if (ng !== null) gid = ng;
      else {
        const ge = (await getGroups()).find((x) => x.name === g);
        if (!ge) throw invalidArgument(`image user ${JSON.stringify(spec)}: group ${JSON.stringify(g)} not found in the image's /etc/group`);
        gid = ge.gid;
      }
    }
  }
  if (req.runAsGroup !== null) gid = req.runAsGroup;

  const extra: number[] = [gid];
  const add = (g: number) => {
    if (!extra.includes(g)) extra.push(g);
  };
  if (!req.strictGroups && entry) {
    for (const ge of await getGroups()) if (ge.members.includes(entry.name)) add(ge.gid);
  }
  for (const g of req.supplementalGroups) add(g);
  return { uid, gid, additionalGids: extra, name: entry?.name ?? null, home: entry ? entry.home : null };
}

/** A CRI int64 id (decimal string) as a uid/gid, or an invalid argument naming the field. */
export function criId(value: string, field: string): number {
  const n = parseId(value);
  if (n === null) {
    // (uid_t)-1 is "leave unchanged" to setresuid/setresgid: the process would stay root.
    const why = value === '4294967295' || value === '-1' ? ' (it is (uid_t)-1, which the kernel takes as "unchanged")' : '';
    throw invalidArgument(`${field}: ${JSON.stringify(value)} is not a valid id${why}`);
  }
  return n;
}
