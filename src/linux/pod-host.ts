/**
 * The kernel facilities of a pod sandbox, over the addon: namespace pins, the shm tmpfs,
 * mount table reads and the cgroup manager. The sandbox domain takes this by injection
 * (SandboxHost), so that it can be driven by a fake without root.
 */
import fsp from 'node:fs/promises';
import { invalidArgument } from '../domain/errors';
import { InvalidNamespaceRequestError, pinNamespaces, unpinNamespace } from '../native/namespaces';
import { mountTmpfs, shmTmpfsOptions, unmount } from '../native/mounts';
import type { SandboxHost } from '../sandbox/service';
import type { CgroupManager } from './cgroups';
import { InfraProcesses } from './infra';

/** Mount points from /proc/self/mountinfo (octal escapes decoded). */
export async function mountPoints(): Promise<Set<string>> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const mp = line.split(' ')[4];
    if (mp) out.add(mp.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

export function podHost(cgroups: CgroupManager): SandboxHost {
  return {
    async pinNamespaces({ types, dir, sysctls }) {
      try {
        return await pinNamespaces({ types, dir, sysctls, uidMap: null, gidMap: null });
      } catch (e) {
        // The facade refuses bad sysctls and combinations before any syscall: input errors.
        if (e instanceof InvalidNamespaceRequestError) throw invalidArgument(e.message);
        throw e;
      }
    },
    unpinNamespace,
    mountShm: (target, sizeBytes) => mountTmpfs(target, shmTmpfsOptions(sizeBytes)),
    unmount: (target) => unmount(target, { detach: true }),
    mountPoints,
    cgroups,
    infra: new InfraProcesses(cgroups),
  };
}
