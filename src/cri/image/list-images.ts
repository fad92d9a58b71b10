import type { Unary } from '../handlers';
import { toCriImage } from './convert';
import { isPinned } from './pinned';

export const listImages: Unary<'ListImages'> = async (req, { deps }) => {
  const records = await deps.images.list(req.filter?.image?.image || null);
  return { images: records.map((r) => toCriImage(r, isPinned(deps, r))) };
};
