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
    if (!LIST.test(v)) throw new CgroupConfigError(`${name} is not a cpu/node list: ${JSON.stringify(v)}`);
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
