/**
 * Paging for the Stream* RPCs: they answer what the matching List* RPC would, split over
 * messages so that no message nears gRPC's size limit however many objects there are.
 */

/** Objects per message: a container's or a sandbox's list item or stats are small. */
export const PAGE_SIZE = 100;

/**
 * Sends `items` in order, `size` per message, each message as `page` makes it from its
 * slice. No items, no message (the stream just ends).
 */
export function sendPages<T, M>(items: readonly T[], send: (message: M) => void, page: (slice: T[]) => M, size = PAGE_SIZE): void {
  if (!(size >= 1)) throw new RangeError(`a page holds at least one item, not ${size}`);
  for (let i = 0; i < items.length; i += size) send(page(items.slice(i, i + size)));
}
