/**
 * The container's mounts, in the order they are made:
 *   1. the kernel filesystems every Linux container has: /proc, /dev (tmpfs), /dev/pts,
 *      /dev/shm (the pod's), /dev/mqueue, /sys, /sys/fs/cgroup;
 *   2. the pod's /etc/hostname, /etc/hosts and /etc/resolv.conf, bind-mounted from the
 *      sandbox's run dir (read-only when the rootfs is, as containerd);
 *   3. the CRI mounts, stably sorted by depth so that a parent is mounted before what is
 *      mounted inside it (containerd does the same).
 * A mount of 1 or 2 whose destination a CRI mount also targets is left out: the CRI one
 * wins (kubelet brings its own /etc/hosts, and may bring /dev/shm or /etc/resolv.conf).
 *
 * Decisions where the peers differ:
 * - A CRI host_path that does not exist is an invalid argument naming it (containerd).
 *   CRI-O creates a directory instead, which hides typos and makes a directory where a
 *   socket or file was meant; kubelet already creates what its volume types promise
 *   (DirectoryOrCreate, emptyDir), so only crictl users meet the error, and they want it.
 * - The host path's symlinks are resolved on the host before mounting (containerd): the
 *   mount then names what was checked.
 * - PROPAGATION_HOST_TO_CONTAINER needs the host path on a shared or slave mount and
 *   PROPAGATION_BIDIRECTIONAL on a shared one, checked in /proc/self/mountinfo
 *   (containerd); otherwise the propagation asked for could not happen and we say so.
 *   The container's / is made rslave (runc's default, stated explicitly) or rshared when a
 *   bidirectional mount needs it.
 * - selinux_relabel is ignored: nodecri runs without SELinux.
 * - recursive_read_only becomes the runtime-spec's "rro" option and needs readonly and
 *   private propagation (kubelet's own validation, checked by the CRI layer).
 * - Image volumes (Mount.image) and id-mapped mounts are refused as unimplemented (by the
 *   CRI layer: the container spec has no room for them).
 * - Image VOLUMEs get no mount of their own (containerd's ignore_image_defined_volumes,
 *   CRI-O's image_volumes=ignore): the directory stays part of the writable rootfs. Those
 *   not covered by a mount are returned so that the caller can report or create them.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { invalidArgument } from '../domain/errors';
import { checkPathLength } from '../domain/limits';
import { type MountInfoEntry, mountOf, parseMountInfo } from '../linux/mountinfo';
import type { ContainerMount } from '../container/spec';
import type { SandboxRecord } from '../sandbox/model';
import type { OciMount } from './types';

export interface MountRequest {
  /** the container spec's mounts (paths absolute, image and id-mapped mounts refused by the CRI layer) */
  requested: readonly ContainerMount[];
  sandbox: Pick<SandboxRecord, 'shm' | 'files'>;
  privileged: boolean;
  readonlyRootfs: boolean;
  /** the container shares the host's IPC namespace: /dev/shm is the host's */
  hostIpc: boolean;
  /** /proc/self/mountinfo of the daemon, read only when a propagation needs checking */
  mountInfo: () => Promise<string>;
  /** the image config's Volumes */
  imageVolumes: readonly string[];
  /** bytes of the rootfs path that destinations are made under, for the PATH_MAX check */
  rootfsBytes?: number;
}

export interface MountPlan {
  mounts: OciMount[];
  rootfsPropagation: 'rslave' | 'rshared';
  /** image VOLUMEs that no mount covers (left in the rootfs) */
  uncoveredVolumes: string[];
}

/**
 * /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, /sys/fs/cgroup. The cgroup entry has
 * type "cgroup" as in runc's specs; on a cgroup v2 host the addon mounts cgroup2 there
 * (runc does the same translation), on v1 the container's own per-controller directories.
 */
export function kernelMounts(privileged: boolean, shmSource: string): OciMount[] {
  const sysMode = privileged ? 'rw' : 'ro';
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/dev/shm', type: 'bind', source: shmSource, options: ['rbind', 'rprivate', 'nosuid', 'nodev', 'noexec', 'rw'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', sysMode] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', sysMode] },
  ];
}

const depth = (p: string) => (p === '/' ? 0 : p.split('/').length - 1);

/** "/a/b/" and "/a//b" → "/a/b". */
export function cleanPath(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

const PROPAGATION = {
  PROPAGATION_PRIVATE: 'rprivate',
  PROPAGATION_HOST_TO_CONTAINER: 'rslave',
  PROPAGATION_BIDIRECTIONAL: 'rshared',
} as const;

export async function containerMounts(req: MountRequest): Promise<MountPlan> {
  const cri: OciMount[] = [];
  const seen = new Set<string>();
  let rootfsPropagation: MountPlan['rootfsPropagation'] = 'rslave';
  let mountInfo: MountInfoEntry[] | null = null;

  for (const [i, m] of req.requested.entries()) {
    const field = `mounts[${i}]`;
    checkPathLength(`${field}: container_path`, m.containerPath, req.rootfsBytes ?? 0);
    checkPathLength(`${field}: host_path`, m.hostPath);
    const dest = cleanPath(m.containerPath);
    if (seen.has(dest)) throw invalidArgument(`${field}: more than one mount at ${dest}`);
    seen.add(dest);

    let source: string;
    try {
      source = await fsp.realpath(m.hostPath);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw invalidArgument(`${field}: host path ${m.hostPath} does not exist`);
      throw invalidArgument(`${field}: host path ${m.hostPath}: ${(e as Error).message}`);
    }

    const propagation = PROPAGATION[m.propagation];
    if (propagation !== 'rprivate') {
      mountInfo ??= parseMountInfo(await req.mountInfo());
      const under = mountOf(mountInfo, source);
      const shared = under?.optional.some((o) => o.startsWith('shared:')) ?? false;
      const slave = under?.optional.some((o) => o.startsWith('master:')) ?? false;
      if (propagation === 'rshared' && !shared) {
        throw invalidArgument(`${field}: host path ${source} is on mount ${under?.mountPoint ?? '?'}, which is not shared, so ${m.propagation} cannot work`);
      }
      if (propagation === 'rslave' && !shared && !slave) {
        throw invalidArgument(`${field}: host path ${source} is on mount ${under?.mountPoint ?? '?'}, which is neither shared nor slave, so ${m.propagation} cannot work`);
      }
      if (propagation === 'rshared') rootfsPropagation = 'rshared';
    }

    const options = ['rbind', propagation, m.readonly ? 'ro' : 'rw'];
    if (m.recursiveReadOnly) options.push('rro');
    cri.push({ destination: dest, type: 'bind', source, options });
  }
  cri.sort((a, b) => depth(a.destination) - depth(b.destination)); // Array.prototype.sort is stable

  const fileMode = req.readonlyRootfs ? 'ro' : 'rw';
  const pod: OciMount[] = [
    { destination: '/etc/hostname', type: 'bind', source: req.sandbox.files.hostname, options: ['rbind', 'rprivate', fileMode] },
    { destination: '/etc/hosts', type: 'bind', source: req.sandbox.files.hosts, options: ['rbind', 'rprivate', fileMode] },
    { destination: '/etc/resolv.conf', type: 'bind', source: req.sandbox.files.resolvConf, options: ['rbind', 'rprivate', fileMode] },
  ];
  const shm = req.hostIpc ? '/dev/shm' : req.sandbox.shm.path;
  const mounts = [...kernelMounts(req.privileged, shm), ...pod].filter((m) => !seen.has(m.destination)).concat(cri);

  const destinations = new Set(mounts.map((m) => m.destination));
  const uncoveredVolumes: string[] = [];
  for (const v of req.imageVolumes) {
    const c = cleanPath(path.posix.isAbsolute(v) ? v : `/${v}`);
    if (!destinations.has(c) && !uncoveredVolumes.includes(c)) uncoveredVolumes.push(c);
  }
  return { mounts, rootfsPropagation, uncoveredVolumes };
}
