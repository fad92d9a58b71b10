/**
 * Device rules on both hierarchies: the v1 devices controller takes them as writes to
 * devices.deny / devices.allow, in order (as crun's write_devices_resources_v1 and runc's
 * devices/v1.go do); cgroup2 has no devices controller and takes a BPF device program that
 * the addon builds from the same list (native/core/device_filter.cc). On a hybrid host a
 * task is in both a v1 devices cgroup and a cgroup2 cgroup and the kernel checks both, so
 * "auto" uses every mechanism the host has.
 *
 * The rules are checked here, before anything is touched, with messages that name the rule:
 * only what both mechanisms express the same way is accepted.
 */
import { CgroupConfigError, type FileValue, fv } from './common';
import type { CgroupLayout } from './detect';
import type { DeviceControl, DeviceEnforcement, DeviceRule } from './types';

/** Largest major and minor a dev_t holds (12 and 20 bits): a rule beyond matches nothing. */
export const DEV_MAJOR_MAX = 4095;
export const DEV_MINOR_MAX = 1048575;

function describe(r: DeviceRule): string {
  return JSON.stringify(r);
}

/** Throws a CgroupConfigError naming the first rule that cannot be enforced. */
export function validateDeviceRules(rules: readonly DeviceRule[]): void {
  if (!Array.isArray(rules) || rules.length === 0 || rules[0].type !== 'a') {
    throw new CgroupConfigError('device rules must start with a rule for every device (type "a"), so that nothing depends on what the cgroup inherited');
  }
  rules.forEach((r, i) => {
    const bad = (why: string) => new CgroupConfigError(`device rule ${i} ${describe(r)}: ${why}`);
    if (typeof r.allow !== 'boolean') throw bad('allow must be a boolean');
    if (typeof r.access !== 'string' || !/^[rwm]{1,3}$/.test(r.access) || new Set(r.access).size !== r.access.length) {
      throw bad('access must be a combination of r, w and m');
    }
    if (r.type === 'a') {
      // v1 reads "a" alone and ignores the rest; the BPF program would not: refuse both.
      if (r.major !== null || r.minor !== null || r.access.length !== 3) throw bad('a rule for every device ("a") cannot name a major, a minor or part of rwm');
      return;
    }
    if (r.type !== 'c' && r.type !== 'b') throw bad('type must be "a", "c" or "b"');
    const num = (v: number | null, max: number, what: string) => {
      if (v !== null && (!Number.isSafeInteger(v) || v < 0 || v > max)) throw bad(`${what} must be null (any) or an integer in 0..${max}`);
    };
    num(r.major, DEV_MAJOR_MAX, 'major');
    num(r.minor, DEV_MINOR_MAX, 'minor');
  });
}

/** The v1 writes for the rules, in order: "a" or "c 1:3 rwm" to devices.allow or devices.deny. */
export function v1DeviceWrites(rules: readonly DeviceRule[]): FileValue[] {
  return rules.map((r) => {
    const line = r.type === 'a' ? 'a' : `${r.type} ${r.major ?? '*'}:${r.minor ?? '*'} ${r.access}`;
    return fv(r.allow ? 'devices.allow' : 'devices.deny', line);
  });
}

/** What enforces device rules with this layout and setting (never throws). */
export function deviceControlFor(layout: CgroupLayout, enforcement: DeviceEnforcement): DeviceControl {
  return {
    v1: enforcement !== 'bpf' && layout.v1Mounts.has('devices'),
    bpf: enforcement !== 'v1' && layout.unifiedMount !== null && layout.deviceFilterErrno === 0,
  };
}

/**
 * The start-up check: the configured mechanism must exist here, and "auto" must find at
 * least one; a host that cannot enforce device rules is refused rather than run open.
 */
export function checkDeviceControl(layout: CgroupLayout, enforcement: DeviceEnforcement, errnoName: (n: number) => string): DeviceControl {
  const control = deviceControlFor(layout, enforcement);
  const bpfWhy = layout.unifiedMount === null ? 'no cgroup2 hierarchy is mounted' : `the kernel refused a cgroup device program (bpf: ${errnoName(layout.deviceFilterErrno ?? 0)})`;
  if (enforcement === 'v1' && !control.v1) throw new CgroupConfigError('cgroup.device_enforcement = "v1" but the v1 devices controller is not mounted');
  if (enforcement === 'bpf' && !control.bpf) throw new CgroupConfigError(`cgroup.device_enforcement = "bpf" but ${bpfWhy}`);
  if (!control.v1 && !control.bpf) {
    throw new CgroupConfigError(`device rules cannot be enforced on this host: the v1 devices controller is not mounted and ${bpfWhy}`);
  }
  return control;
}
