/**
 * cgroup v2 via cgroupfs: one directory per cgroup on the unified hierarchy. Controllers
 * have to be enabled in every ancestor's cgroup.subtree_control before their files show
 * up in the cgroup, which create() does top-down.
 */
import type { CgroupCreateSpec, CgroupKillSpec } from '../../native/cgroups';
import { CgroupfsBase, type Placement, controllerOfKey, missing } from './cgroupfs-base';
import { joinDir, relativeCgroupPath, unique } from './common';
import { cpuUsageV2 } from './cpu';
import { memoryStatsV2 } from './memory';
import { pidsCurrent } from './pids';
import type { CgroupMode, CgroupPaths, CgroupStats, ControllerName, Resources } from './types';

/** Controllers with writers or stats here; cpuacct and freezer are v1 notions. */
const MANAGED: readonly ControllerName[] = ['cpu', 'cpuset', 'memory', 'pids', 'hugetlb'];

export class CgroupfsV2Manager extends CgroupfsBase {
  readonly mode: CgroupMode = 'v2';

  private get mount(): string {
    return this.layout.unifiedMount as string;
  }

  protected placement(c: ControllerName, rel: string): Placement | null {
    return this.layout.unifiedControllers.has(c) ? { dir: joinDir(this.mount, rel), version: 2 } : null;
  }

  protected pathsOf(rel: string): CgroupPaths {
    const dir = joinDir(this.mount, rel);
    const out: Partial<Record<ControllerName | 'unified', string>> = { unified: dir };
    for (const c of MANAGED) if (this.layout.unifiedControllers.has(c)) out[c] = dir;
    return out;
  }

  protected createSpecs(rel: string): CgroupCreateSpec[] {
    // A new v2 cgroup with empty cpuset.cpus uses its parent's effective set: no inherit.
    return [{ root: this.mount, path: rel, inheritFiles: [] }];
  }

  protected enableTarget(r: Resources, creating: boolean): { mount: string; controllers: string[] } {
    // On create, every managed controller the host offers (as runc does), so later
    // updates find their files; on update, only the controllers of new unified keys.
    const keyed = Object.keys(r.unified).map(controllerOfKey);
    const wanted = creating ? [...MANAGED, ...keyed] : keyed;
    return { mount: this.mount, controllers: unique(wanted.filter((c) => this.layout.unifiedControllers.has(c))) };
  }

  protected unifiedDirFor(rel: string): string {
    return joinDir(this.mount, rel);
  }

  protected killSpec(rel: string): CgroupKillSpec {
    const dir = joinDir(this.mount, rel);
    // cgroup.kill (5.14+) does it all; the v2 freezer is the fallback on older kernels.
    return { killDirs: [dir], procsDirs: [dir], freezerDir: dir, freezerVersion: 2, timeoutMs: this.options.killTimeoutMs };
  }

  async stats(path: string): Promise<CgroupStats> {
    const dir = joinDir(this.mount, relativeCgroupPath(path));
    const files = ['cgroup.type', 'cpu.stat', 'memory.current', 'memory.stat', 'memory.max', 'memory.events', 'pids.current'];
    const v = await this.native.cgroupReadFiles(files.map((file) => ({ dir, file })));
    // cgroup.type is in every non-root v2 cgroup: it tells "no such cgroup" from "no data".
    if (v[0] === null) throw missing(dir, 'read cgroup stats');
    const hasMemory = this.layout.unifiedControllers.has('memory');
    const mem = memoryStatsV2(v[2], v[3], v[4], v[5]);
    return {
      cpuUsageNanos: cpuUsageV2(v[1]),
      ...(hasMemory ? mem : { memoryUsageBytes: null, memoryWorkingSetBytes: null, memoryLimitBytes: null, oomKillCount: null }),
      pids: pidsCurrent(v[6]),
    };
  }
}
