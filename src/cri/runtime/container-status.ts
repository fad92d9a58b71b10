import type { Unary } from '../handlers';
import { containerStatusToCri } from '../convert/container';

export const containerStatus: Unary<'ContainerStatus'> = async (req, { deps }) => {
  const r = deps.containers.mustGet(req.container_id);
  const spec = await deps.containers.spec(r).catch(() => null);
  const info: Record<string, string> = req.verbose
    ? { info: JSON.stringify({ pid: r.pid, sandboxId: r.sandboxId, rootfs: r.rootfs, cgroupPath: r.cgroupPath, runtimeSpec: spec }) }
    : {};
  return { status: containerStatusToCri(r, spec), info };
};
