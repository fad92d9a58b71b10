import type { ServerStream } from '../handlers';
import { sendPages } from '../paging';
import { toCriImage } from './convert';
import { isPinned } from './pinned';

/** Images per message: well under the 16 MiB message limit even with many tags. */
const BATCH = 500;

export const streamImages: ServerStream<'StreamImages'> = async (req, { deps }, send) => {
  const records = await deps.images.list(req.filter?.image?.image || null);
  sendPages(records, send, (page) => ({ images: page.map((r) => toCriImage(r, isPinned(deps, r))) }), BATCH);
};
