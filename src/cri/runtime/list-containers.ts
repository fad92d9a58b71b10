import type { ServerStream, Unary } from '../handlers';
import type { CriDeps } from '../deps';
import type { ContainerFilter__Output } from '../generated/runtime/v1/ContainerFilter';
import type { Container } from '../generated/runtime/v1/Container';
import { containerListItem } from '../convert/container';
import { selectContainers } from '../convert/filter';
import { sendPages } from '../paging';

export function listContainerItems(deps: CriDeps, filter: ContainerFilter__Output | null): Container[] {
  return selectContainers(deps, filter).map(containerListItem);
}

export const listContainers: Unary<'ListContainers'> = async (req, { deps }) => ({ containers: listContainerItems(deps, req.filter) });

export const streamContainers: ServerStream<'StreamContainers'> = async (req, { deps }, send) => {
  const items = listContainerItems(deps, req.filter);
  sendPages(items, send, (containers) => ({ containers }));
};
