/**
 * What a test that drives the addon directly (a ProcessSpec, no config.json) gives its
 * container for a usual Linux environment: runc's default mounts (a tmpfs /dev/shm of its
 * own rather than the pod's), and the default /dev nodes and symlinks of src/oci/ as the
 * process plan makes them. The addon adds none itself.
 */
import { deviceSpecs, devSymlinks } from '../../src/container/process-plan';
import type { ProcessSpec } from '../../src/native/process';
import { defaultDeviceNodes } from '../../src/oci/devices';

export function defaultMounts(): ProcessSpec['mounts'] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  ];
}

/** The default device nodes and /dev symlinks, as containerProcessSpec gives them. */
export function defaultDev(): Pick<ProcessSpec, 'devices' | 'symlinks'> {
  return { devices: deviceSpecs(defaultDeviceNodes()), symlinks: devSymlinks([{ destination: '/dev' }]) };
}
