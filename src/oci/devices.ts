/**
 * Devices: the nodes every container's /dev gets (the runtime-spec's default devices),
 * then the container spec's host devices, become linux.devices (made in the container's
 * /dev), each requested one with a matching device-cgroup rule after the default rules
 * every container gets.
 *
 * - The default nodes (null, zero, full, random, urandom, tty) are char devices of mode
 *   0666 owned by root, written into config.json rather than added by the runtime later;
 *   a requested device at the same path replaces the default one.
 * - A host path is stat'ed (following symlinks, so /dev/disk/by-id/... works) for its type
 *   and major:minor; a missing one is an invalid argument naming it. A directory stands
 *   for every device under it, placed under container_path (containerd and CRI-O both do
 *   this, for /dev/snd and the like).
 * - permissions is a subset of "rwm" (the CRI layer checks it and makes "" "rwm").
 * - The device cgroup denies everything, then allows the devices the runtime-spec says
 *   every container has (null, zero, full, random, urandom, tty, console, ptmx, the pty
 *   slaves) and mknod of any device (creating a node is harmless while the cgroup refuses
 *   its use; CAP_MKNOD decides anyway).
 * - A privileged container gets every device allowed in the cgroup. Unlike the peers we do
 *   not copy the host's /dev nodes into it: its /dev holds only the defaults and the
 *   devices asked for, so a privileged pod that needs a host device must list it.
 */
import type { BigIntStats } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { invalidArgument } from '../domain/errors';
import type { ContainerDevice } from '../container/spec';
import type { DeviceRule } from '../linux/cgroups';
import type { OciDevice, OciDeviceCgroup } from './types';

/** The devices the OCI runtime spec says every container gets (its "Default Devices"). */
export const DEFAULT_DEVICES: readonly { path: string; major: number; minor: number }[] = [
  { path: '/dev/null', major: 1, minor: 3 },
  { path: '/dev/zero', major: 1, minor: 5 },
  { path: '/dev/full', major: 1, minor: 7 },
  { path: '/dev/random', major: 1, minor: 8 },
  { path: '/dev/urandom', major: 1, minor: 9 },
  { path: '/dev/tty', major: 5, minor: 0 },
];

/** The default devices as linux.devices entries: char devices, 0666, root's. */
export function defaultDeviceNodes(): OciDevice[] {
  return DEFAULT_DEVICES.map((d) => ({ path: d.path, type: 'c', major: d.major, minor: d.minor, fileMode: 0o666, uid: 0, gid: 0 }));
}

/**
 * Whether a linux.devices entry is one of the defaults: such a node exists on every host at
 * the same path, so where mknod is refused (a user namespace) the host's can be bound.
 */
export function isDefaultDevice(d: Pick<OciDevice, 'path' | 'type' | 'major' | 'minor'>): boolean {
  return d.type === 'c' && DEFAULT_DEVICES.some((x) => x.path === d.path && x.major === d.major && x.minor === d.minor);
}

/**
 * Symlinks the runtime makes in a container's /dev once its mounts are made (the
 * runtime-spec's "Dev symbolic links", plus ptmx and core as runc makes them). The
 * runtime-spec has no config.json field for them: the plan adds them (container/process-plan.ts).
 */
export const DEV_SYMLINKS: readonly { path: string; target: string }[] = [
  { path: '/dev/fd', target: '/proc/self/fd' },
  { path: '/dev/stdin', target: '/proc/self/fd/0' },
  { path: '/dev/stdout', target: '/proc/self/fd/1' },
  { path: '/dev/stderr', target: '/proc/self/fd/2' },
  { path: '/dev/ptmx', target: 'pts/ptmx' },
  { path: '/dev/core', target: '/proc/kcore' },
];

/** The device-cgroup rules every unprivileged container starts from. */
export function defaultDeviceRules(): OciDeviceCgroup[] {
  const c = (major: number, minor: number | undefined, access: string): OciDeviceCgroup =>
    minor === undefined ? { allow: true, type: 'c', major, access } : { allow: true, type: 'c', major, minor, access };
  return [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', access: 'm' },
    { allow: true, type: 'b', access: 'm' },
    c(1, 3, 'rwm'), // null
    c(1, 5, 'rwm'), // zero
    c(1, 7, 'rwm'), // full
    c(1, 8, 'rwm'), // random
    c(1, 9, 'rwm'), // urandom
    c(5, 0, 'rwm'), // tty
    c(5, 1, 'rwm'), // console
    c(5, 2, 'rwm'), // ptmx
    c(136, undefined, 'rwm'), // pts/*
  ];
}

/** Linux's dev_t encoding: 12 bits of major and 20 of minor, split across the word. */
export function devMajorMinor(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev & 0xfff00n) >> 8n) | ((rdev & 0xfffff00000000000n) >> 32n);
  const minor = (rdev & 0xffn) | ((rdev & 0xffffff00000n) >> 12n);
  return { major: Number(major), minor: Number(minor) };
}

const S_IFMT = 0o170000n;
const S_IFCHR = 0o020000n;
const S_IFBLK = 0o060000n;
const S_IFIFO = 0o010000n;
const S_IFDIR = 0o040000n;

function typeOf(mode: bigint): 'c' | 'b' | 'p' | 'dir' | null {
  switch (mode & S_IFMT) {
    case S_IFCHR:
      return 'c';
    case S_IFBLK:
      return 'b';
    case S_IFIFO:
      return 'p';
    case S_IFDIR:
      return 'dir';
    default:
      return null;
  }
}

/**
 * linux.resources.devices as the cgroup manager enforces them, with the runtime-spec's
 * defaults filled in: no type is "a", no major or minor is any, no access is "rwm".
 */
export function cgroupDeviceRules(rules: readonly OciDeviceCgroup[]): DeviceRule[] {
  // Passed through as they are otherwise: the cgroup manager refuses what it cannot enforce.
  return rules.map((r) => ({ allow: r.allow, type: r.type ?? 'a', major: r.major ?? null, minor: r.minor ?? null, access: r.access ?? 'rwm' }));
}

export interface DevicePlan {
  devices: OciDevice[];
  rules: OciDeviceCgroup[];
}

export async function containerDevices(requested: readonly ContainerDevice[], privileged: boolean): Promise<DevicePlan> {
  const devices: OciDevice[] = [];
  const rules: OciDeviceCgroup[] = privileged ? [{ allow: true, access: 'rwm' }] : defaultDeviceRules();

  const addOne = (containerPath: string, st: BigIntStats, type: 'c' | 'b' | 'p', access: string) => {
    const { major, minor } = devMajorMinor(st.rdev);
    devices.push({ path: containerPath, type, major, minor, fileMode: Number(st.mode & 0o777n), uid: Number(st.uid), gid: Number(st.gid) });
    if (!privileged && type !== 'p') rules.push({ allow: true, type, major, minor, access });
  };

  for (const [i, d] of requested.entries()) {
    const field = `devices[${i}]`;
    const containerPath = d.containerPath;
    const access = d.permissions;
    let st;
    try {
      st = await fsp.stat(d.hostPath, { bigint: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw invalidArgument(`${field}: device ${d.hostPath} does not exist`);
      throw invalidArgument(`${field}: device ${d.hostPath}: ${(e as Error).message}`);
    }
    const type = typeOf(st.mode);
    if (type === null) throw invalidArgument(`${field}: ${d.hostPath} is not a device`);
    if (type !== 'dir') {
      addOne(containerPath, st, type, access);
      continue;
    }
    // A directory: every device node below it, in name order.
    const walk = async (hostDir: string, ctrDir: string): Promise<void> => {
      const entries = (await fsp.readdir(hostDir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
      for (const e of entries) {
        const h = path.join(hostDir, e.name);
        const c = path.posix.join(ctrDir, e.name);
        if (e.isDirectory()) await walk(h, c);
        else if (e.isCharacterDevice() || e.isBlockDevice()) {
          const s = await fsp.stat(h, { bigint: true });
          addOne(c, s, e.isCharacterDevice() ? 'c' : 'b', access);
        }
      }
    };
    await walk(d.hostPath, containerPath);
  }
  // The defaults first, unless a requested device takes their path.
  const taken = new Set(devices.map((d) => d.path));
  return { devices: [...defaultDeviceNodes().filter((d) => !taken.has(d.path)), ...devices], rules };
}
