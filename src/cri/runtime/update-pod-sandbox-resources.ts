import type { Unary } from '../handlers';
import { podResources, resourcesFromCri } from '../convert/resources';

export const updatePodSandboxResources: Unary<'UpdatePodSandboxResources'> = async (req, { deps }) => {
  await deps.sandboxes.updateResources(req.pod_sandbox_id, podResources(resourcesFromCri(req.overhead), resourcesFromCri(req.resources)));
  return {};
};
