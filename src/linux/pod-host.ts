/**
 * The kernel facilities of a pod sandbox, over the addon: namespace pins, the shm tmpfs,
 * mount table reads and the cgroup manager. The sandbox domain takes this by injection
 * (SandboxHost), so that it can be driven by a fake without root.
 */
import { invalidArgument } from '../domain/errors';
import { InvalidNamespaceRequestError, pinNamespaces, unpinNamespace } from '../native/namespaces';
import { mountTmpfs, shmTmpfsOptions, unmount } from '../native/mounts';
import type { SandboxHost } from '../sandbox/service';
import type { CgroupManager } from './cgroups';
import { InfraProcesses } from './infra';
import { connectInNetns } from './pod-connect';
import { mountPoints, removeTree } from './tree';

export { mountPoints } from './tree';

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
    removeTree,
    cgroups,
    infra: new InfraProcesses(cgroups),
    connectInNetns,
  };
}
