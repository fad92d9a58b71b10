/**
 * Runs one recorded undo (an UndoAction from an operation's journal): the code an
 * in-process failure and a recovery after a crash share. Every undo is idempotent.
 */
import fsp from 'node:fs/promises';
import type { CgroupManager } from '../linux/cgroups';
import type { UndoAction } from './undo-action';

export interface UndoHost {
  removeTree(dir: string): Promise<void>;
  unmountIfMounted(target: string): Promise<void>;
  cgroups: CgroupManager;
  detachNetwork(action: Extract<UndoAction, { kind: 'network' }>): Promise<void>;
  releaseRootfs(containerId: string): Promise<void>;
}

export type Undoer = (action: UndoAction) => Promise<void>;

export function undoer(host: UndoHost): Undoer {
  return async (a) => {
    switch (a.kind) {
      case 'tree':
        return host.removeTree(a.path);
      case 'file':
        return fsp.rm(a.path, { force: true });
      case 'mount':
        return host.unmountIfMounted(a.path);
      case 'cgroup':
        await host.cgroups.killAll(a.path).catch(() => undefined);
        if (!a.keep) await host.cgroups.remove(a.path);
        return;
      case 'network':
        return host.detachNetwork(a);
      case 'rootfs':
        return host.releaseRootfs(a.containerId);
    }
  };
}
