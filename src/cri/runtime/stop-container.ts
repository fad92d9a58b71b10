import type { Unary } from '../handlers';

export const stopContainer: Unary<'StopContainer'> = async (req, { deps, signal }) => {
  // The CRI lets a stop of a container that is gone succeed.
  if (!deps.containers.get(req.container_id)) return {};
  // A caller that gives up (its deadline, a cancel) ends the wait, not the container.
  await deps.containers.stop(req.container_id, Number(req.timeout), signal);
  return {};
};
