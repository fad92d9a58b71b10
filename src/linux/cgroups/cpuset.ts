/**
 * cpuset: which CPUs and memory nodes the tasks may use. Same file names in v1 and v2.
 * A new v1 cpuset cgroup starts with empty cpus/mems and refuses tasks; the manager fills
 * them from the parent when it makes the directory (V1_CPUSET_INHERIT), before any write
 * here narrows them.
 */
import { CgroupConfigError, type ControllerWriter, type FileValue, fv } from './common';
import type { Resources } from './types';

export const V1_CPUSET_INHERIT = ['cpuset.cpus', 'cpuset.mems'];

/** "0-3,6" style lists; anything else would be refused by the kernel with EINVAL anyway. */
const LIST = /^\s*\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*\s*$/;
/** Above any CPU or node number a kernel has (NR_CPUS is at most 8192). */
const MAX_ID = 65535;

/** Why `v` is not a list the kernel takes, or null. Which ids exist is the kernel's to say. */
function listError(v: string): string | null {
  if (!LIST.test(v)) return `${JSON.stringify(v)} is not a cpu/node list (such as "0-3,6")`;
  for (const part of v.replace(/\s+/g, '').split(',')) {
    const ends = part.split('-');
    const big = ends.find((x) => x.length > 5 || Number(x) > MAX_ID);
    if (big !== undefined) return `${JSON.stringify(v)}: ${big} is not a cpu/node number`;
    const [a, b = a] = ends.map(Number);
    if (a > b) return `${JSON.stringify(v)}: range ${part} goes backwards`;
  }
  return null;
}

function set(v: string | null): v is string {
  return v !== null && v !== '';
}

function writes(r: Resources): FileValue[] {
  const out: FileValue[] = [];
  for (const [name, v, file] of [
    ['cpusetCpus', r.cpusetCpus, 'cpuset.cpus'],
    ['cpusetMems', r.cpusetMems, 'cpuset.mems'],
  ] as const) {
    if (!set(v)) continue;
    const bad = listError(v);
    if (bad !== null) throw new CgroupConfigError(bad, name);
    out.push(fv(file, v.replace(/\s+/g, '')));
  }
  return out;
}

export const cpuset: ControllerWriter = {
  name: 'cpuset',
  wants: (r) => set(r.cpusetCpus) || set(r.cpusetMems),
  v1: writes,
  v2: writes,
};
