import type { Unary } from '../handlers';
import { sandboxInfo, sandboxStatusToCri } from '../convert/sandbox';
import { nowNanos } from '../../domain/events';
import { containerStatusToCri } from '../convert/container';

export const podSandboxStatus: Unary<'PodSandboxStatus'> = async (req, { deps }) => {
  const r = deps.sandboxes.mustGet(req.pod_sandbox_id);
  return {
    status: sandboxStatusToCri(r),
    info: req.verbose ? sandboxInfo(r) : {},
    containers_statuses: deps.containers.ofSandbox(r.id).map((c) => containerStatusToCri(c, null)),
    timestamp: nowNanos(),
  };
};
