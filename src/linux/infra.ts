/**
 * The pod infra process: only for pods that share one PID namespace, the pause binary
 * runs as the pod's PID 1 (it reaps the pod's orphans), in the pod's pinned namespaces and
 * its own cgroup under the pod's, with OOM score -998 and cpu shares 2 as the peers give
 * their pause containers, as user 65535 with no capabilities and no new privileges. Its
 * root is a tiny directory holding only a read-only bind of the pause binary: no image, no
 * overlay, no pull.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { buildDir } from '../native/binding';
import {
  adoptStarted,
  baseProcessSpec,
  createProcess,
  processStartTime,
  refProcess,
  releaseProcess,
  signalProcess,
  startProcess,
  untilExitReapingStrays,
  type NamespaceSpec,
  type ProcessHandle,
} from '../native/process';
import { cgroupProcsFiles, noResources, type CgroupManager } from './cgroups';

/** The pause binary, built beside the addon (which this loads). */
export function pauseBinary(): string {
  return path.join(buildDir(), 'nodecri-pause');
}
/** uid and gid of the pause process: the pause image's 65535 (nobody on most images) */
export const pauseUser = 65535;

export interface InfraRequest {
  runDir: string;
  pins: { net: string | null; ipc: string | null; uts: string | null };
  /** the cgroup the infra process gets (made here, under the pod's) */
  cgroupPath: string;
}

export class InfraProcesses {
  private readonly handles = new Map<number, ProcessHandle>();

  constructor(private readonly cgroups: CgroupManager) {}

  /**
   * Starts pause; the caller pushes stop() on its cleanup stack. Returns the pid and its
   * start time, which a restarted daemon checks before it adopts the pid.
   */
  async start(req: InfraRequest): Promise<{ pid: number; startTime: string | null; warnings: string[] }> {
    const root = path.join(req.runDir, 'infra-root');
    await fsp.mkdir(root, { recursive: true, mode: 0o755 });
    await fsp.writeFile(path.join(root, 'pause'), '', { mode: 0o755 });
    await this.cgroups.create(req.cgroupPath, { ...noResources(), cpuShares: 2 });
    const namespaces: NamespaceSpec[] = [
      { type: 'pid', path: null },
      { type: 'mount', path: null },
    ];
    if (req.pins.net) namespaces.push({ type: 'network', path: req.pins.net });
    if (req.pins.ipc) namespaces.push({ type: 'ipc', path: req.pins.ipc });
    if (req.pins.uts) namespaces.push({ type: 'uts', path: req.pins.uts });
    let handle: ProcessHandle;
    try {
      handle = await createProcess({
        ...baseProcessSpec(root, ['/pause']),
        // Not root, as the pause image (USER 65535:65535): a sibling container, root with
        // the default capabilities (no CAP_SYS_PTRACE), must not open PID 1's memory.
        uid: pauseUser,
        gid: pauseUser,
        additionalGids: [],
        rootReadonly: true,
        namespaces,
        mounts: [{ destination: '/pause', type: 'bind', source: pauseBinary(), options: ['bind', 'ro'] }],
        capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] },
        noNewPrivileges: true,
        oomScoreAdj: -998,
        cgroupProcs: cgroupProcsFiles(this.cgroups, req.cgroupPath),
      });
    } catch (e) {
      await this.cgroups.remove(req.cgroupPath).catch(() => {});
      throw e;
    }
    try {
      await startProcess(handle);
    } catch (e) {
      await releaseProcess(handle);
      await this.cgroups.remove(req.cgroupPath).catch(() => {});
      throw e;
    }
    refProcess(handle, false);
    this.handles.set(handle.pid, handle);
    return { pid: handle.pid, startTime: await processStartTime(handle.pid), warnings: handle.warnings };
  }

  /**
   * Re-watches an infra process after a daemon restart, as containers are (adoptStarted):
   * only if the pid still names the process started at `startTime`. False when it is gone
   * or the pid now names another process, which is then never signalled.
   */
  async adopt(pid: number, startTime: string | null): Promise<boolean> {
    const h = await adoptStarted(pid, startTime);
    if (!h) return false;
    refProcess(h, false);
    this.handles.set(pid, h);
    return true;
  }

  /** Kills pause (it holds no state) and waits for it to be reaped; idempotent. */
  async stop(pid: number): Promise<void> {
    const h = this.handles.get(pid);
    if (!h) return;
    try {
      signalProcess(h, 'SIGKILL');
    } catch {
      // already gone
    }
    // pause is the init of the pod's PID namespace: it finishes dying only once every
    // process in it is reaped, strays of exec processes included.
    await untilExitReapingStrays(h, h.exited);
    await releaseProcess(h);
    this.handles.delete(pid);
  }

  running(pid: number): boolean {
    return this.handles.has(pid);
  }
}
