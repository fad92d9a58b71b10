import type { Unary } from '../handlers';
import { sandboxSpecFromCri } from '../convert/sandbox';

export const runPodSandbox: Unary<'RunPodSandbox'> = async (req, { deps, signal }) => {
  const spec = sandboxSpecFromCri(req.config, req.runtime_handler);
  return { pod_sandbox_id: await deps.sandboxes.run(spec, signal) };
};
