/**
 * The selection of the CRI list filters, one for containers and one for sandboxes, shared
 * by the list RPCs and the stats RPCs (whose filters are the same but for the state).
 */
import type { ContainerRecord } from '../../container/model';
import type { SandboxRecord } from '../../sandbox/model';
import type { ContainerFilter__Output } from '../generated/runtime/v1/ContainerFilter';
import type { PodSandboxFilter__Output } from '../generated/runtime/v1/PodSandboxFilter';

/** The label selector of the CRI list filters: every pair must match exactly. */
function matchesLabels(labels: Record<string, string>, selector: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/** A container's labels, as the label selector sees them. */
export const containerLabels = (r: ContainerRecord): Record<string, string> => r.spec.labels;

/** A sandbox's labels, as the label selector sees them. */
export const sandboxLabels = (r: SandboxRecord): Record<string, string> => r.spec.labels;

/** The ContainerFilter fields; ContainerStatsFilter has all but the state. */
export type ContainerSelection = Pick<ContainerFilter__Output, 'id' | 'pod_sandbox_id' | 'label_selector'> & Partial<Pick<ContainerFilter__Output, 'state'>>;

/** The PodSandboxFilter fields; PodSandboxStatsFilter has all but the state. */
export type SandboxSelection = Pick<PodSandboxFilter__Output, 'id' | 'label_selector'> & Partial<Pick<PodSandboxFilter__Output, 'state'>>;

interface Lookup<R> {
  list(): R[];
  /** by id or unique id prefix */
  get(idOrPrefix: string): R | null;
}

/**
 * The containers a filter selects: id (or a unique prefix) and pod_sandbox_id (the same)
 * narrow to at most one, and a prefix that names nothing selects nothing; state and labels
 * must match.
 */
export function selectContainers(deps: { containers: Lookup<ContainerRecord>; sandboxes: Lookup<SandboxRecord> }, filter: ContainerSelection | null): ContainerRecord[] {
  let records = deps.containers.list();
  if (filter?.id) {
    const one = deps.containers.get(filter.id);
    records = one ? [one] : [];
  }
  if (filter?.pod_sandbox_id) {
    const sandbox = deps.sandboxes.get(filter.pod_sandbox_id);
    records = sandbox ? records.filter((r) => r.sandboxId === sandbox.id) : [];
  }
  const state = filter?.state;
  if (state) records = records.filter((r) => r.state === state.state);
  return records.filter((r) => matchesLabels(containerLabels(r), filter?.label_selector));
}

/** The sandboxes a filter selects, as selectContainers does. */
export function selectSandboxes(deps: { sandboxes: Lookup<SandboxRecord> }, filter: SandboxSelection | null): SandboxRecord[] {
  let records = deps.sandboxes.list();
  if (filter?.id) {
    const one = deps.sandboxes.get(filter.id);
    records = one ? [one] : [];
  }
  const state = filter?.state;
  if (state) records = records.filter((r) => r.state === state.state);
  return records.filter((r) => matchesLabels(sandboxLabels(r), filter?.label_selector));
}
