import { invalidArgument } from '../../domain/errors';
import type { Unary } from '../handlers';

/** Answers the image id (the config digest), as containerd does. */
export const pullImage: Unary<'PullImage'> = async (req, { deps, signal }) => {
  const name = req.image?.image ?? '';
  if (name === '') throw invalidArgument('image is empty');
  const rec = await deps.images.pull(name, req.auth, signal);
  return { image_ref: rec.id };
};
