/**
 * Group lookup for the daemon's own files (the CRI socket's group): a numeric gid is
 * taken as it is, a name is looked up in /etc/group, as Go's os/user does without cgo.
 * A group that only NSS knows (LDAP, sssd) is given by its gid.
 */
import fsp from 'node:fs/promises';

/** The gid of `group` (a name or a number), or null when no such group is listed. */
export async function groupId(group: string, groupFile = '/etc/group'): Promise<number | null> {
  if (/^\d+$/.test(group)) return Number(group);
  let text: string;
  try {
    text = await fsp.readFile(groupFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return null;
}
