import type { Unary } from '../handlers';

export const createContainer: Unary<'CreateContainer'> = async (req, { deps }) => ({
  container_id: await deps.containers.create(req.pod_sandbox_id, req.config),
});
