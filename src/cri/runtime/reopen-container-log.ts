import type { Unary } from '../handlers';

export const reopenContainerLog: Unary<'ReopenContainerLog'> = async (req, { deps }) => {
  await deps.containers.reopenLog(req.container_id);
  return {};
};
