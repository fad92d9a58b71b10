import type { Unary } from '../handlers';

export const startContainer: Unary<'StartContainer'> = async (req, { deps }) => {
  await deps.containers.start(req.container_id);
  return {};
};
