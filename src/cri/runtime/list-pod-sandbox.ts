import type { ServerStream, Unary } from '../handlers';
import type { CriDeps } from '../deps';
import type { PodSandboxFilter__Output } from '../generated/runtime/v1/PodSandboxFilter';
import type { PodSandbox } from '../generated/runtime/v1/PodSandbox';
import { sandboxListItem } from '../convert/sandbox';
import { selectSandboxes } from '../convert/filter';
import { sendPages } from '../paging';

export function listSandboxes(deps: CriDeps, filter: PodSandboxFilter__Output | null): PodSandbox[] {
  return selectSandboxes(deps, filter).map(sandboxListItem);
}

export const listPodSandbox: Unary<'ListPodSandbox'> = async (req, { deps }) => ({ items: listSandboxes(deps, req.filter) });

/** The same items as ListPodSandbox, in pages. */
export const streamPodSandboxes: ServerStream<'StreamPodSandboxes'> = async (req, { deps }, send) => {
  const items = listSandboxes(deps, req.filter);
  sendPages(items, send, (pod_sandboxes) => ({ pod_sandboxes }));
};
