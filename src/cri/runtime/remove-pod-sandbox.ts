import type { Unary } from '../handlers';

export const removePodSandbox: Unary<'RemovePodSandbox'> = async (req, { deps, signal }) => {
  await deps.sandboxes.remove(req.pod_sandbox_id, signal);
  return {};
};
