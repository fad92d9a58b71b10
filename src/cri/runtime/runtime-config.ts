import type { Unary } from '../handlers';

export const runtimeConfig: Unary<'RuntimeConfig'> = async (_req, { deps }) => ({
  linux: { cgroup_driver: deps.runtime.cgroupDriver === 'systemd' ? 'SYSTEMD' : 'CGROUPFS' },
});
