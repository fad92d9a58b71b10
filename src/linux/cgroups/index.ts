/**
 * The cgroup facility: detection picks the cgroupfs backend once at start-up.
 *
 *   const cgroups = await createCgroupManager();
 *   await cgroups.create('/kubepods/pod1', { ...noResources(), memoryLimitBytes: 256n << 20n });
 */
import path from 'node:path';
import type { CgroupNative } from '../../native/cgroups';
import { type CgroupfsOptions, defaultCgroupfsOptions } from './cgroupfs-base';
import { CgroupfsV1Manager } from './cgroupfs-v1';
import { CgroupfsV2Manager } from './cgroupfs-v2';
import { errnoName } from './common';
import { type CgroupLayout, detectCgroupLayout } from './detect';
import { checkDeviceControl } from './devices';
import type { CgroupManager } from './types';

export * from './types';
export { CgroupConfigError, type ResourceField } from './common';
export { validateDeviceRules } from './devices';
export type { CgroupLayout } from './detect';
export type { CgroupfsOptions } from './cgroupfs-base';

/** The manager for a known layout (tests pass a fake native facade). */
export function cgroupManagerFor(layout: CgroupLayout, native: CgroupNative, options: CgroupfsOptions = defaultCgroupfsOptions): CgroupManager {
  return layout.mode === 'v2' ? new CgroupfsV2Manager(layout, native, options) : new CgroupfsV1Manager(layout, native, options);
}

export interface CreateCgroupManagerOptions extends Partial<CgroupfsOptions> {
  /** Defaults to the addon; a recording fake in unit tests. */
  native?: CgroupNative;
}

/**
 * Detects the host's cgroup layout and returns the matching manager. Fails (a
 * CgroupConfigError) when the configured device enforcement is not available here.
 */
export async function createCgroupManager(opts: CreateCgroupManagerOptions = {}): Promise<{ manager: CgroupManager; layout: CgroupLayout }> {
  // Loaded lazily so that importing this module (for types, or with a fake) never loads
  // the addon.
  const native = opts.native ?? (await import('../../native/cgroups')).cgroupNative;
  const layout = await detectCgroupLayout(native);
  const options = { ...defaultCgroupfsOptions, ...opts };
  checkDeviceControl(layout, options.deviceEnforcement, errnoName);
  return { manager: cgroupManagerFor(layout, native, options), layout };
}

/** cgroup.procs files of every hierarchy the cgroup lives in. */
export function cgroupProcsFiles(cgroups: CgroupManager, cgroupPath: string): string[] {
  return [...new Set(Object.values(cgroups.paths(cgroupPath)))].map((dir) => path.join(dir, 'cgroup.procs'));
}
