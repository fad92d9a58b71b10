import type { Unary } from '../handlers';
import { resourcesFromCri } from '../convert/resources';

export const updateContainerResources: Unary<'UpdateContainerResources'> = async (req, { deps }) => {
  await deps.containers.updateResources(req.container_id, resourcesFromCri(req.linux));
  return {};
};
