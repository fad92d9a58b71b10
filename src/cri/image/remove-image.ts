import { invalidArgument } from '../../domain/errors';
import type { Unary } from '../handlers';

/** An unknown image is success; an image in use by a container is refused. */
export const removeImage: Unary<'RemoveImage'> = async (req, { deps }) => {
  const name = req.image?.image ?? '';
  if (name === '') throw invalidArgument('image is empty');
  await deps.images.remove(name);
  return {};
};
