import { invalidArgument } from '../../domain/errors';
import type { Unary } from '../handlers';
import { toCriImage } from './convert';
import { isPinned } from './pinned';

/** An unknown image is an empty answer, not an error (the CRI says so). */
export const imageStatus: Unary<'ImageStatus'> = async (req, { deps }) => {
  const name = req.image?.image ?? '';
  if (name === '') throw invalidArgument('image is empty');
  const rec = await deps.images.status(name);
  if (rec === null) return { image: null, info: {} };
  const info: Record<string, string> = {};
  if (req.verbose) {
    info.info = JSON.stringify({
      id: rec.id,
      manifestDigest: rec.manifestDigest,
      chainIDs: rec.layers,
      size: rec.size,
      createdAt: rec.createdAt,
      usedBy: await deps.images.usedBy(rec.id),
      imageSpec: rec.config,
    });
  }
  return { image: toCriImage(rec, isPinned(deps, rec)), info };
};
