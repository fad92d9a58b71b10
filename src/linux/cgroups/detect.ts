/**
 * Host detection, run once at start-up: which hierarchy each controller lives on, read
 * from /proc/self/mountinfo and the cgroup2 root's cgroup.controllers (through the addon).
 * A controller is bound to at most one hierarchy, so in hybrid mode the v1 mounts and the
 * unified root's controllers never overlap (on some hosts hugetlb sits on v2 while the
 * rest are v1).
 */
import type { CgroupFileRead, CgroupNative } from '../../native/cgroups';
import { type MountInfoEntry, readMountInfo } from '../mountinfo';
import type { CgroupMode } from './types';

/** Controller names a v1 mount can carry in its super options (kernel's cgroup_subsys). */
const V1_CONTROLLERS = new Set(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'blkio', 'perf_event', 'net_prio', 'hugetlb', 'pids', 'rdma', 'misc']);

export interface CgroupLayout {
  mode: CgroupMode;
  /** v1 controller -> mount point ("cpu" and "cpuacct" share one when co-mounted). */
  v1Mounts: ReadonlyMap<string, string>;
  /** The cgroup2 mount point, or null on a pure v1 host. */
  unifiedMount: string | null;
  /** Controllers the cgroup2 root offers (its cgroup.controllers). */
  unifiedControllers: ReadonlySet<string>;
  /** v1 memory.memsw.* exist (swap accounting is on). */
  memswSupported: boolean;
  /**
   * 0 when the kernel loads cgroup device programs for us (a test load at start-up), else
   * its errno; null on a pure v1 host (no cgroup2 to attach them to).
   */
  deviceFilterErrno: number | null;
}

/**
 * What detection reads of a mount. root is the cgroup mounted there ("/" unless inside a
 * cgroup namespace); a v1 mount's super options name its controllers (rw,cpu,cpuacct).
 */
export type CgroupMount = Pick<MountInfoEntry, 'mountPoint' | 'root' | 'fstype' | 'superOptions'>;

/** The pure part of detection: mounts (of any type) -> where each controller lives. */
export function classifyMounts(all: readonly CgroupMount[]): Pick<CgroupLayout, 'v1Mounts' | 'unifiedMount'> {
  const mounts = all.filter((m) => m.fstype === 'cgroup' || m.fstype === 'cgroup2');
  // A hierarchy mounted twice (bind mounts, a cgroup namespace) is used where its root is
  // the hierarchy's root, so that our cgroup paths are absolute in it.
  const ordered = [...mounts.filter((m) => m.root === '/'), ...mounts.filter((m) => m.root !== '/')];
  const v1Mounts = new Map<string, string>();
  let unifiedMount: string | null = null;
  for (const m of ordered) {
    if (m.fstype === 'cgroup2') {
      unifiedMount ??= m.mountPoint;
      continue;
    }
    for (const opt of m.superOptions) {
      if (V1_CONTROLLERS.has(opt) && !v1Mounts.has(opt)) v1Mounts.set(opt, m.mountPoint);
    }
  }
  return { v1Mounts, unifiedMount };
}

export function modeOf(v1Mounts: ReadonlyMap<string, string>, unifiedMount: string | null): CgroupMode {
  if (v1Mounts.size === 0) {
    if (unifiedMount === null) throw new Error('no cgroup hierarchy is mounted (see /proc/self/mountinfo)');
    return 'v2';
  }
  return unifiedMount === null ? 'v1' : 'hybrid';
}

export async function detectCgroupLayout(native: CgroupNative, mountInfo: () => Promise<readonly CgroupMount[]> = readMountInfo): Promise<CgroupLayout> {
  const { v1Mounts, unifiedMount } = classifyMounts(await mountInfo());
  const mode = modeOf(v1Mounts, unifiedMount);
  const memoryMount = v1Mounts.get('memory') ?? null;
  // Both reads are optional: a null comes back for a missing file (memsw exists only
  // with swap accounting).
  const reads: CgroupFileRead[] = [];
  const at = (dir: string | null, file: string): number => (dir === null ? -1 : reads.push({ dir, file }) - 1);
  const controllersAt = at(unifiedMount, 'cgroup.controllers');
  const memswAt = at(memoryMount, 'memory.memsw.limit_in_bytes');
  const values = reads.length > 0 ? await native.cgroupReadFiles(reads) : [];
  const controllers = controllersAt >= 0 ? values[controllersAt] : null;
  const memsw = memswAt >= 0 ? values[memswAt] : null;
  const deviceFilterErrno = unifiedMount === null ? null : await native.cgroupDeviceFilterProbe();
  return {
    mode,
    v1Mounts,
    unifiedMount,
    unifiedControllers: new Set((controllers ?? '').split(/\s+/).filter((c) => c !== '')),
    memswSupported: memsw !== null,
    deviceFilterErrno,
  };
}
