import type { ServerStream, Unary } from '../handlers';
import type { CriDeps } from '../deps';
import type { PodSandboxFilter__Output } from '../generated/runtime/v1/PodSandboxFilter';
import type { PodSandbox } from '../generated/runtime/v1/PodSandbox';
import { sandboxListItem } from '../convert/sandbox';
import { selectSandboxes } from '../convert/filter';

export function listSandboxes(deps: CriDeps, filter: PodSandboxFilter__Output | null): PodSandbox[] {
  return selectSandboxes(deps, filter).map(sandboxListItem);
}

export const listPodSandbox: Unary<'ListPodSandbox'> = async (req, { deps }) => ({ items: listSandboxes(deps, req.filter) });

/** The same items as ListPodSandbox, a page of 100 per message. */
export const streamPodSandboxes: ServerStream<'StreamPodSandboxes'> = async (req, { deps }, send) => {
  const items = listSandboxes(deps, req.filter);
  for (let i = 0; i < items.length; i += 100) send({ pod_sandboxes: items.slice(i, i + 100) });
};
