/**
 * What a test that drives the addon directly (a ProcessSpec, no config.json) gives its
 * container for a usual Linux environment: the kernel mounts of src/oci (a tmpfs /dev/shm of
 * its own rather than the pod's), and the default /dev nodes and symlinks of src/oci/ as the
 * process plan makes them. The addon adds none itself.
 */
import { deviceSpecs, devSymlinks } from '../../src/container/process-plan';
import type { ProcessSpec } from '../../src/native/process';
import { defaultDeviceNodes } from '../../src/oci/devices';
import { kernelMounts } from '../../src/oci/mounts';

export function defaultMounts(): ProcessSpec['mounts'] {
  // src/oci's kernel mounts, less the pod's shm (a tmpfs of its own here) and the cgroup
  // mount (which needs the container's cgroup paths).
  const shm = { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] };
  return kernelMounts(false, '')
    .filter((m) => m.destination !== '/sys/fs/cgroup')
    .map((m) => (m.destination === '/dev/shm' ? shm : { destination: m.destination, type: m.type ?? '', source: m.source ?? '', options: m.options ?? [] }));
}

/** The default device nodes and /dev symlinks, as containerProcessSpec gives them. */
export function defaultDev(): Pick<ProcessSpec, 'devices' | 'symlinks'> {
  return { devices: deviceSpecs(defaultDeviceNodes()), symlinks: devSymlinks([{ destination: '/dev' }]) };
}
