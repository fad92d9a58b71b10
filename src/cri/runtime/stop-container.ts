import type { Unary } from '../handlers';

export const stopContainer: Unary<'StopContainer'> = async (req, { deps }) => {
  // The CRI lets a stop of a container that is gone succeed.
  if (!deps.containers.get(req.container_id)) return {};
  await deps.containers.stop(req.container_id, Number(req.timeout));
  return {};
};
