/**
 * What the v1 (including hybrid) and v2 cgroupfs managers share: the create / update /
 * attach / kill / remove sequences over the native facade. A subclass says where each
 * controller lives (placement) and how stats are read; the per-controller writers say
 * which files get which values.
 */
import os from 'node:os';
import type { CgroupCreateSpec, CgroupFileWrite, CgroupKillSpec, CgroupNative } from '../../native/cgroups';
import { SyscallError } from '../../native/errors';
import {
  CgroupConfigError,
  type ControllerWriter,
  type ResourceField,
  type WriteContext,
  ancestors,
  checkCgroupDirLength,
  errnoName,
  joinDir,
  relativeCgroupPath,
  unique,
} from './common';
import { cpu } from './cpu';
import { cpuset } from './cpuset';
import type { CgroupLayout } from './detect';
import { deviceControlFor, v1DeviceWrites, validateDeviceRules } from './devices';
import { hugetlb } from './hugetlb';
import { memory, v1NeedsCurrentLimit } from './memory';
import { pids } from './pids';
import type { CgroupManager, CgroupMode, CgroupPaths, CgroupStats, ControllerName, DeviceControl, DeviceEnforcement, DeviceRule, Resources } from './types';

/** The writers, in the order their files are written. */
export const WRITERS: readonly ControllerWriter[] = [cpuset, cpu, memory, pids, hugetlb];

/** Where a controller's files for one cgroup are, and in which version's format. */
export interface Placement {
  dir: string;
  version: 1 | 2;
}

export interface CgroupfsOptions {
  /** How long killAll waits for the tasks to go before failing with EBUSY. */
  killTimeoutMs: number;
  /** Which mechanisms enforce device rules (config cgroup.device_enforcement). */
  deviceEnforcement: DeviceEnforcement;
}

export const defaultCgroupfsOptions: CgroupfsOptions = { killTimeoutMs: 10_000, deviceEnforcement: 'auto' };

/**
 * v2 core files the manager itself drives; a `unified` resource must not write them, or
 * it could move tasks, kill or freeze behind the manager's back.
 */
const RESERVED_UNIFIED = new Set(['cgroup.procs', 'cgroup.threads', 'cgroup.kill', 'cgroup.freeze', 'cgroup.subtree_control', 'cgroup.type']);
const UNIFIED_KEY = /^[a-z][a-z0-9_]*\.[A-Za-z0-9_.]+$/;

interface PlannedWrite extends CgroupFileWrite {
  tolerate: readonly string[];
  /** the resource the value comes from, to name when the kernel refuses it */
  field: ResourceField | null;
}

/** Control files to the resource they carry, for the kernel's refusals. */
const FIELD_OF_FILE: ReadonlyArray<[RegExp, ResourceField]> = [
  [/^cpuset\.cpus$/, 'cpusetCpus'],
  [/^cpuset\.mems$/, 'cpusetMems'],
  [/^cpu\.(shares|weight)$/, 'cpuShares'],
  [/^cpu\.(cfs_quota_us|max)$/, 'cpuQuota'],
  [/^cpu\.cfs_period_us$/, 'cpuPeriod'],
  [/^memory\.(limit_in_bytes|max)$/, 'memoryLimitBytes'],
  [/^memory\.(memsw\.limit_in_bytes|swap\.max)$/, 'memorySwapLimitBytes'],
  [/^pids\.max$/, 'pidsLimit'],
  [/^hugetlb\./, 'hugepageLimits'],
];

function fieldOfFile(file: string): ResourceField | null {
  return FIELD_OF_FILE.find(([re]) => re.test(file))?.[1] ?? null;
}

/**
 * errnos with which the kernel refuses a value written to a control file: EINVAL (not a
 * value of that file), ERANGE (a CPU or node that is not there), EOVERFLOW (too large).
 * They are the caller's input at fault, not a failure of the host.
 */
const VALUE_REFUSED = new Set(['EINVAL', 'ERANGE', 'EOVERFLOW']);

export abstract class CgroupfsBase implements CgroupManager {
  abstract readonly mode: CgroupMode;
  readonly deviceControl: DeviceControl;

  constructor(
    protected readonly layout: CgroupLayout,
    protected readonly native: CgroupNative,
    protected readonly options: CgroupfsOptions = defaultCgroupfsOptions,
  ) {
    this.deviceControl = deviceControlFor(layout, options.deviceEnforcement);
  }

  /** Where `controller` lives for the cgroup at `rel`, or null when it is not available. */
  protected abstract placement(controller: ControllerName, rel: string): Placement | null;
  /** The directories to make, per hierarchy mount. */
  protected abstract createSpecs(rel: string): CgroupCreateSpec[];
  /**
   * The cgroup2 mount and the controllers to enable down to the cgroup, or null. `creating`
   * tells create (where v2 enables everything it manages) from update (only what `r` needs).
   */
  protected abstract enableTarget(r: Resources, creating: boolean): { mount: string; controllers: string[] } | null;
  /** The cgroup2 directory for `unified` resources; throws if a key cannot be honoured. */
  protected abstract unifiedDirFor(rel: string, key: string): string;
  protected abstract killSpec(rel: string): CgroupKillSpec;
  protected abstract pathsOf(rel: string): CgroupPaths;
  abstract stats(path: string): Promise<CgroupStats>;

  paths(path: string): CgroupPaths {
    return this.pathsOf(this.rel(path));
  }

  /** The relative path, refused when a directory of it could not hold its files. */
  protected rel(path: string): string {
    const rel = relativeCgroupPath(path);
    for (const d of Object.values(this.pathsOf(rel))) if (d !== undefined) checkCgroupDirLength(d);
    return rel;
  }

  /** Every distinct directory of the cgroup. */
  protected dirs(rel: string): string[] {
    return unique(Object.values(this.pathsOf(rel)).filter((d): d is string => d !== undefined));
  }

  async create(path: string, resources: Resources): Promise<void> {
    const rel = this.rel(path);
    this.validate(rel, resources);
    await this.native.cgroupCreate(this.createSpecs(rel));
    await this.enableControllers(rel, this.enableTarget(resources, true));
    await this.apply(rel, resources);
  }

  async update(path: string, resources: Resources): Promise<void> {
    const rel = this.rel(path);
    this.validate(rel, resources);
    await this.enableControllers(rel, this.enableTarget(resources, false));
    await this.apply(rel, resources);
  }

  async attach(path: string, pid: number): Promise<void> {
    const rel = relativeCgroupPath(path);
    if (!Number.isSafeInteger(pid) || pid <= 0) throw new CgroupConfigError(`invalid pid: ${pid}`);
    await this.native.cgroupWriteFiles(this.dirs(rel).map((dir) => ({ dir, file: 'cgroup.procs', value: String(pid), mayFail: false })));
  }

  async killAll(path: string): Promise<void> {
    await this.native.cgroupKillAll(this.killSpec(relativeCgroupPath(path)));
  }

  async remove(path: string): Promise<void> {
    await this.native.cgroupRemove(this.dirs(relativeCgroupPath(path)));
  }

  /** Plans the writes once without I/O, so that bad input fails before anything is touched. */
  private validate(rel: string, r: Resources): void {
    const devices = devicesOf(r);
    if (devices !== null) {
      validateDeviceRules(devices);
      if (!this.deviceControl.v1 && !this.deviceControl.bpf) throw new CgroupConfigError('device rules cannot be enforced on this host');
    }
    this.planWrites(rel, r, { memswSupported: this.layout.memswSupported, currentMemoryLimit: 0n });
  }

  /**
   * Device rules go first, on every mechanism in use: devices.deny / devices.allow in the
   * v1 devices cgroup, then the BPF program on the cgroup2 dir. Both replace what was
   * there: the v1 list starts with an "a" rule (which resets it) and the program replaces
   * the one attached before.
   */
  private async applyDevices(rel: string, rules: DeviceRule[]): Promise<void> {
    const v1 = this.layout.v1Mounts.get('devices');
    if (this.deviceControl.v1 && v1 !== undefined) {
      const dir = joinDir(v1, rel);
      await this.native.cgroupWriteFiles(v1DeviceWrites(rules).map((f) => ({ dir, file: f.file, value: f.value, mayFail: false })));
    }
    if (this.deviceControl.bpf && this.layout.unifiedMount !== null) {
      await this.native.cgroupDeviceFilter(joinDir(this.layout.unifiedMount, rel), rules);
    }
  }

  /**
   * Writes "+c1 +c2" to cgroup.subtree_control of the cgroup2 root and of each ancestor,
   * so that the controllers' files appear in the cgroup. If one line is refused (a
   * controller not offered, or an ancestor with tasks of its own), fall back to one
   * controller at a time and ignore refusals, as runc does: a controller that could not
   * be enabled shows up as a missing file when a limit for it is written.
   */
  protected async enableControllers(rel: string, target: { mount: string; controllers: string[] } | null): Promise<void> {
    if (target === null || target.controllers.length === 0) return;
    const { mount, controllers } = target;
    const dirs = [mount, ...ancestors(rel).map((a) => joinDir(mount, a))];
    const line = controllers.map((c) => `+${c}`).join(' ');
    const results = await this.native.cgroupWriteFiles(dirs.map((dir) => ({ dir, file: 'cgroup.subtree_control', value: line, mayFail: true })));
    const failed = dirs.filter((_, i) => results[i] !== 0);
    if (failed.length === 0) return;
    await this.native.cgroupWriteFiles(failed.flatMap((dir) => controllers.map((c) => ({ dir, file: 'cgroup.subtree_control', value: `+${c}`, mayFail: true }))));
  }

  private async apply(rel: string, r: Resources): Promise<void> {
    const devices = devicesOf(r);
    if (devices !== null) await this.applyDevices(rel, devices);
    const ctx: WriteContext = { memswSupported: this.layout.memswSupported, currentMemoryLimit: null };
    const mem = this.placement('memory', rel);
    if (mem !== null && mem.version === 1 && v1NeedsCurrentLimit(r, ctx.memswSupported)) {
      const [cur] = await this.native.cgroupReadFiles([{ dir: mem.dir, file: 'memory.limit_in_bytes' }]);
      if (cur === null) throw missing(`${mem.dir}/memory.limit_in_bytes`, 'read cgroup file');
      ctx.currentMemoryLimit = BigInt(cur.trim());
    }
    const writes = this.planWrites(rel, r, ctx);
    if (writes.length === 0) return;
    const results = await this.native.cgroupWriteFiles(writes.map(({ tolerate: _t, field: _f, ...w }) => w)).catch((e: unknown) => {
      throw refusedValue(e, writes) ?? e;
    });
    results.forEach((errno, i) => {
      if (errno === 0) return;
      const w = writes[i];
      const code = errnoName(errno);
      // Only entries sent with mayFail can come back non-zero; the writer said which
      // errnos are expected (e.g. cpu's first period write, retried after the quota).
      if (w.tolerate.includes(code)) return;
      const path = `${w.dir}/${w.file}`;
      const err = new SyscallError(`write cgroup file: write ${path}: ${code}`, code, errno, 'write', path, 'write cgroup file');
      throw refusedValue(err, [w]) ?? err;
    });
  }

  /** All the files to write for `r`, in order, in their directories. Throws on bad input. */
  private planWrites(rel: string, r: Resources, ctx: WriteContext): PlannedWrite[] {
    const out: PlannedWrite[] = [];
    for (const w of WRITERS) {
      if (!w.wants(r)) continue;
      const place = this.placement(w.name, rel);
      if (place === null) throw new CgroupConfigError(`the ${w.name} controller is not available on this host`);
      const files = place.version === 1 ? w.v1(r, ctx) : w.v2(r, ctx);
      for (const f of files) {
        out.push({ dir: place.dir, file: f.file, value: f.value, mayFail: f.tolerate.length > 0, tolerate: f.tolerate, field: fieldOfFile(f.file) });
      }
    }
    // Verbatim v2 keys go last, so that they win over the mapped values (as in runc).
    for (const [key, value] of Object.entries(r.unified)) {
      if (!UNIFIED_KEY.test(key) || RESERVED_UNIFIED.has(key)) {
        throw new CgroupConfigError(`key not allowed: ${JSON.stringify(key)}`, 'unified');
      }
      if (typeof value !== 'string') throw new CgroupConfigError(`${key} must be a string`, 'unified');
      out.push({ dir: this.unifiedDirFor(rel, key), file: key, value, mayFail: false, tolerate: [], field: 'unified' });
    }
    return out;
  }
}

/**
 * The kernel's refusal of a resource's value (or of an unknown unified key) as the
 * caller's invalid input naming the resource, or null for any other failure.
 */
function refusedValue(e: unknown, writes: readonly PlannedWrite[]): CgroupConfigError | null {
  if (!(e instanceof SyscallError)) return null;
  const w = writes.find((x) => `${x.dir}/${x.file}` === e.path);
  if (!w || w.field === null) return null;
  if (VALUE_REFUSED.has(e.code)) return new CgroupConfigError(`${JSON.stringify(w.value)} refused by the kernel for ${w.file} (${e.code})`, w.field);
  if (w.field === 'unified' && e.code === 'ENOENT') return new CgroupConfigError(`${JSON.stringify(w.file)} is not a control file of this cgroup`, 'unified');
  return null;
}

/** The device rules of `r`; resources saved before they existed (a record) have none. */
function devicesOf(r: Resources): DeviceRule[] | null {
  return r.devices ?? null;
}

/** The ENOENT a missing cgroup or control file gives, shaped like the addon's errors. */
export function missing(path: string, step: string): SyscallError {
  return new SyscallError(`${step}: openat ${path}: no such file or directory`, 'ENOENT', os.constants.errno.ENOENT, 'openat', path, step);
}

/** The controller a cgroup2 file belongs to: "memory.high" -> "memory". */
export function controllerOfKey(key: string): string {
  return key.slice(0, key.indexOf('.'));
}
