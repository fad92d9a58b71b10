import type { Unary } from '../handlers';

export const stopPodSandbox: Unary<'StopPodSandbox'> = async (req, { deps, signal }) => {
  await deps.sandboxes.stop(req.pod_sandbox_id, signal);
  return {};
};
