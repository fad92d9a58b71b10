/**
 * Devices: the CRI config's host devices become linux.devices (made in the container's
 * /dev) with a matching device-cgroup rule, after the default rules every container gets.
 *
 * - A host path is stat'ed (following symlinks, so /dev/disk/by-id/... works) for its type
 *   and major:minor; a missing one is an invalid argument naming it. A directory stands
 *   for every device under it, placed under container_path (containerd and CRI-O both do
 *   this, for /dev/snd and the like).
 * - permissions is a subset of "rwm"; empty means "rwm".
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
import type { Device__Output } from '../cri/generated/runtime/v1/Device';
import type { DeviceRule } from '../linux/cgroups';
import type { OciDevice, OciDeviceCgroup } from './types';

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

export async function containerDevices(criDevices: Device__Output[], privileged: boolean): Promise<DevicePlan> {
  const devices: OciDevice[] = [];
  const rules: OciDeviceCgroup[] = privileged ? [{ allow: true, access: 'rwm' }] : defaultDeviceRules();

  const addOne = (containerPath: string, st: BigIntStats, type: 'c' | 'b' | 'p', access: string) => {
    const { major, minor } = devMajorMinor(st.rdev);
    devices.push({ path: containerPath, type, major, minor, fileMode: Number(st.mode & 0o777n), uid: Number(st.uid), gid: Number(st.gid) });
    if (!privileged && type !== 'p') rules.push({ allow: true, type, major, minor, access });
  };

  for (const [i, d] of criDevices.entries()) {
    const field = `devices[${i}]`;
    if (!path.posix.isAbsolute(d.host_path)) throw invalidArgument(`${field}: host_path ${JSON.stringify(d.host_path)} must be an absolute path`);
    const containerPath = d.container_path === '' ? d.host_path : d.container_path;
    if (!path.posix.isAbsolute(containerPath)) {
      throw invalidArgument(`${field}: container_path ${JSON.stringify(d.container_path)} must be an absolute path`);
    }
    const access = d.permissions === '' ? 'rwm' : d.permissions;
    if (!/^[rwm]{1,3}$/.test(access) || new Set(access).size !== access.length) {
      throw invalidArgument(`${field}: permissions ${JSON.stringify(d.permissions)} must be a combination of r, w and m`);
    }
    let st;
    try {
      st = await fsp.stat(d.host_path, { bigint: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw invalidArgument(`${field}: device ${d.host_path} does not exist`);
      throw invalidArgument(`${field}: device ${d.host_path}: ${(e as Error).message}`);
    }
    const type = typeOf(st.mode);
    if (type === null) throw invalidArgument(`${field}: ${d.host_path} is not a device`);
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
    await walk(d.host_path, containerPath);
  }
  return { devices, rules };
}
