import type { Unary } from '../handlers';
import { containerSpecFromCri } from '../convert/container';

export const createContainer: Unary<'CreateContainer'> = async (req, { deps }) => {
  const spec = containerSpecFromCri(req.config);
  return { container_id: await deps.containers.create(req.pod_sandbox_id, spec) };
};
