/**
 * kubelet's cgroup_parent, checked before the pod makes anything: with the cgroupfs
 * driver it is a cgroup path from the hierarchy root ("/kubepods/burstable/pod<uid>"),
 * not a systemd slice (CRI-O refuses a parent whose last part ends in ".slice" the same
 * way), not a filesystem path under the cgroup mounts, and short enough that the pod's
 * own cgroups under it keep their files within PATH_MAX.
 */
import path from 'node:path';
import { invalidArgument } from '../domain/errors';
import { quotePath } from '../domain/limits';
import { CgroupConfigError, type CgroupManager } from '../linux/cgroups';

const field = 'linux.cgroup_parent';
const example = 'a cgroup path from the cgroup root, such as /kubepods/burstable/pod<uid>';

/** The longest cgroup a pod makes under its parent (its infra; containers' are shorter). */
export function infraCgroupOf(parent: string, sandboxId: string): string {
  return path.posix.join(parent, `nodecri-infra-${sandboxId}`);
}

export function checkCgroupParent(cgroups: CgroupManager, driver: string, parent: string, sandboxId: string): void {
  if (parent === '') return;
  const q = quotePath(parent);
  const slice = path.posix.basename(parent).endsWith('.slice') || /^[^/]+:[^/]*:/.test(parent);
  if (slice && driver !== 'systemd') {
    throw invalidArgument(`${field} ${q} is a systemd slice, but the cgroup driver is ${driver}: give ${example}`);
  }
  if (!parent.startsWith('/')) throw invalidArgument(`${field} ${q} is not absolute: give ${example}`);
  if (parent === '/sys/fs/cgroup' || parent.startsWith('/sys/fs/cgroup/')) {
    throw invalidArgument(`${field} ${q} is a filesystem path under the cgroup mounts: give ${example}`);
  }
  try {
    cgroups.paths(parent);
    cgroups.paths(infraCgroupOf(parent, sandboxId));
  } catch (e) {
    if (e instanceof CgroupConfigError) throw invalidArgument(`${field} ${q}: ${e.message}`);
    throw e;
  }
}
