/**
 * The kernel facilities of a container, over the addon: the overlay rootfs mount, FIFOs,
 * the container process and exec, and the OCI spec generator with this host's defaults.
 */
import fs from 'node:fs';
import type { ContainerHost } from '../container/service';
import { mknod, S_IFIFO } from '../native/fs';
import { mountOverlay, unmount } from '../native/mounts';
import {
  adoptStarted,
  createProcess,
  dupFd,
  keepAcrossExec,
  unwatchAllExits,
  processStartTime,
  execProcess,
  reapStrays,
  refProcess,
  untilExitReapingStrays,
  releaseProcess,
  resizeTerminal,
  signalProcess,
  startProcess,
  terminalWriter,
} from '../native/process';
import { defaultRuntimeDefaults, generateSpec } from '../oci';
import { capabilitiesFromMask } from '../oci/capabilities';
import type { CgroupManager } from './cgroups';
import { removeTree } from './tree';

function capLastCap(): number | null {
  try {
    return Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  } catch {
    return null;
  }
}

/** The daemon's permitted capabilities: all it can ever hand to a container. */
function hostCapabilities(): string[] | null {
  try {
    const m = /^CapPrm:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? capabilitiesFromMask(m[1]) : null;
  } catch {
    return null;
  }
}

export function containerHost(cgroups: CgroupManager): ContainerHost {
  return {
    cgroups,
    mountOverlay: (lower, upper, work, target) => mountOverlay(lower, upper, work, target, { volatile: false, readonly: false }),
    unmount: (target) => unmount(target, { detach: true }),
    mkfifo: (p) => mknod(p, S_IFIFO | 0o600, 0, 0),
    removeTree,
    createProcess,
    startProcess,
    execProcess,
    signalProcess,
    releaseProcess,
    refProcess,
    reapStrays,
    untilExitReapingStrays,
    adoptStarted,
    processStartTime,
    unwatchAllExits,
    dupFd,
    keepAcrossExec,
    resizeTerminal,
    terminalWriter,
    generateSpec,
    // Probed once at start-up, never in a request.
    defaults: { ...defaultRuntimeDefaults(), capLastCap: capLastCap(), hostCapabilities: hostCapabilities() },
  };
}
