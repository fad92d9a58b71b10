import type { Unary } from '../handlers';

export const removeContainer: Unary<'RemoveContainer'> = async (req, { deps }) => {
  await deps.containers.remove(req.container_id);
  return {};
};
