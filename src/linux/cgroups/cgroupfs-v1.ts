/**
 * cgroup v1 via cgroupfs, including hybrid hosts. Each controller has its own hierarchy
 * (cpu and cpuacct may share one) and the cgroup is made in each. On a hybrid host the
 * cgroup is also made on the unified (cgroup2) hierarchy, as runc does: a controller that
 * is bound there rather than to a v1 mount (hugetlb on some hosts) gets its v2 files, and
 * cgroup.kill there gives a race-free kill-all.
 */
import type { CgroupCreateSpec, CgroupKillSpec } from '../../native/cgroups';
import { CgroupfsBase, type Placement, WRITERS, controllerOfKey, missing } from './cgroupfs-base';
import { CgroupConfigError, joinDir, relativeCgroupPath, unique } from './common';
import { cpuUsageV1, cpuUsageV2 } from './cpu';
import { V1_CPUSET_INHERIT } from './cpuset';
import { memoryStatsV1, memoryStatsV2 } from './memory';
import { pidsCurrent } from './pids';
import type { CgroupMode, CgroupPaths, CgroupStats, ControllerName, Resources } from './types';

/** Controllers the cgroup is made in. freezer is not limited but lets killAll hold tasks. */
const MANAGED: readonly ControllerName[] = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'hugetlb', 'freezer'];

export class CgroupfsV1Manager extends CgroupfsBase {
  get mode(): CgroupMode {
    return this.layout.unifiedMount === null ? 'v1' : 'hybrid';
  }

  /** MANAGED, and devices when its rules are enforced there (so tasks join that cgroup too). */
  private get managed(): readonly ControllerName[] {
    return this.deviceControl.v1 ? [...MANAGED, 'devices'] : MANAGED;
  }

  /** A managed controller's v1 mount, if it has one. */
  private v1Mount(c: ControllerName): string | null {
    return this.layout.v1Mounts.get(c) ?? null;
  }

  /** Whether a controller without a v1 mount is offered by the unified hierarchy. */
  private onUnified(c: string): boolean {
    return this.layout.unifiedMount !== null && this.layout.unifiedControllers.has(c);
  }

  protected placement(c: ControllerName, rel: string): Placement | null {
    const v1 = this.v1Mount(c);
    if (v1 !== null) return { dir: joinDir(v1, rel), version: 1 };
    if (this.onUnified(c)) return { dir: joinDir(this.layout.unifiedMount as string, rel), version: 2 };
    return null;
  }

  protected pathsOf(rel: string): CgroupPaths {
    const out: Partial<Record<ControllerName | 'unified', string>> = {};
    for (const c of this.managed) {
      const p = this.placement(c, rel);
      if (p !== null) out[c] = p.dir;
    }
    if (this.layout.unifiedMount !== null) out.unified = joinDir(this.layout.unifiedMount, rel);
    return out;
  }

  protected createSpecs(rel: string): CgroupCreateSpec[] {
    const cpusetMount = this.v1Mount('cpuset');
    const mounts = unique(this.managed.map((c) => this.v1Mount(c)).filter((m): m is string => m !== null));
    const specs: CgroupCreateSpec[] = mounts.map((root) => ({
      root,
      path: rel,
      inheritFiles: root === cpusetMount ? V1_CPUSET_INHERIT : [],
    }));
    if (this.layout.unifiedMount !== null) specs.push({ root: this.layout.unifiedMount, path: rel, inheritFiles: [] });
    return specs;
  }

  protected enableTarget(r: Resources): { mount: string; controllers: string[] } | null {
    if (this.layout.unifiedMount === null) return null;
    // Only what these resources need on the unified side (hugetlb limits on a host that
    // binds hugetlb there, unified keys). Enabling a controller in a cgroup's
    // subtree_control forbids tasks in that cgroup itself (cgroup2's no-internal-process
    // rule), which a v1-style layout with tasks at several levels would trip over.
    const wanted = [...WRITERS.filter((w) => w.wants(r) && this.v1Mount(w.name) === null).map((w) => w.name), ...Object.keys(r.unified).map(controllerOfKey)];
    return { mount: this.layout.unifiedMount, controllers: unique(wanted.filter((c) => this.onUnified(c))) };
  }

  protected unifiedDirFor(rel: string, key: string): string {
    const c = controllerOfKey(key);
    if (this.layout.unifiedMount === null) {
      throw new CgroupConfigError(`${JSON.stringify(key)} needs cgroup v2, which this host does not mount`, 'unified');
    }
    if (c !== 'cgroup' && !this.onUnified(c)) {
      throw new CgroupConfigError(`${JSON.stringify(key)} needs the ${c} controller on cgroup v2; this hybrid host does not offer it there`, 'unified');
    }
    return joinDir(this.layout.unifiedMount, rel);
  }

  protected killSpec(rel: string): CgroupKillSpec {
    const freezer = this.v1Mount('freezer');
    return {
      killDirs: this.layout.unifiedMount !== null ? [joinDir(this.layout.unifiedMount, rel)] : [],
      procsDirs: this.dirs(rel),
      freezerDir: freezer !== null ? joinDir(freezer, rel) : null,
      freezerVersion: 1,
      timeoutMs: this.options.killTimeoutMs,
    };
  }

  async stats(path: string): Promise<CgroupStats> {
    const rel = relativeCgroupPath(path);
    const dirs = this.dirs(rel);
    const cpuacct = this.placement('cpuacct', rel);
    const unified = this.layout.unifiedMount !== null ? joinDir(this.layout.unifiedMount, rel) : null;
    const mem = this.placement('memory', rel);
    const pids = this.placement('pids', rel);
    // v1 CPU time is cpuacct's; without it, the unified cgroup's cpu.stat (a core file in
    // every v2 cgroup) still counts it.
    const cpuRead = cpuacct?.version === 1 ? { dir: cpuacct.dir, file: 'cpuacct.usage' } : unified !== null ? { dir: unified, file: 'cpu.stat' } : null;
    const memFiles =
      mem === null
        ? []
        : mem.version === 1
          ? ['memory.usage_in_bytes', 'memory.stat', 'memory.limit_in_bytes', 'memory.oom_control']
          : ['memory.current', 'memory.stat', 'memory.max', 'memory.events'];
    // A file every cgroup has tells "no such cgroup" from "no data": notify_on_release in
    // v1, cgroup.type in cgroup2.
    const v1Dir = this.managed.map((c) => this.placement(c, rel)).find((p) => p?.version === 1)?.dir ?? null;
    const probe = v1Dir !== null ? { dir: v1Dir, file: 'notify_on_release' } : { dir: dirs[0], file: 'cgroup.type' };
    const reads = [
      probe,
      ...(cpuRead ? [cpuRead] : []),
      ...memFiles.map((file) => ({ dir: (mem as Placement).dir, file })),
      ...(pids ? [{ dir: pids.dir, file: 'pids.current' }] : []),
    ];
    const values = await this.native.cgroupReadFiles(reads);
    if (values[0] === null) throw missing(probe.dir, 'read cgroup stats');
    let i = 1;
    const cpuText = cpuRead ? values[i++] : null;
    const m = memFiles.map(() => values[i++]);
    const pidsText = pids ? values[i++] : null;
    const memStats =
      mem === null
        ? { memoryUsageBytes: null, memoryWorkingSetBytes: null, memoryLimitBytes: null, oomKillCount: null }
        : mem.version === 1
          ? memoryStatsV1(m[0], m[1], m[2], m[3])
          : memoryStatsV2(m[0], m[1], m[2], m[3]);
    return {
      cpuUsageNanos: cpuRead === null ? null : cpuRead.file === 'cpuacct.usage' ? cpuUsageV1(cpuText) : cpuUsageV2(cpuText),
      ...memStats,
      pids: pidsCurrent(pidsText),
    };
  }
}
