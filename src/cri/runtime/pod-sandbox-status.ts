import type { Unary } from '../handlers';
import { sandboxInfo, sandboxStatusToCri } from '../convert/sandbox';
import { nowNanos } from '../../domain/events';

export const podSandboxStatus: Unary<'PodSandboxStatus'> = async (req, { deps }) => {
  const r = deps.sandboxes.mustGet(req.pod_sandbox_id);
  return {
    status: sandboxStatusToCri(r),
    info: req.verbose ? sandboxInfo(r) : {},
    containers_statuses: [],
    timestamp: nowNanos(),
  };
};
