/**
 * The pod sandboxes the daemon knows, by id and unique id prefix. SandboxService writes
 * them; the container side reads them (a container is made in a ready pod, and the orphan
 * sweep asks which pod a cgroup belongs to). The store is made first and given to both, so
 * that the container service exists before the sandbox service, which stops and removes a
 * pod's containers through it (SandboxContainers): each dependency is passed at
 * construction, none bound late.
 */
import { IdIndex } from '../domain/ids';
import type { SandboxRecord } from './model';

export class SandboxRecords {
  readonly byId = new Map<string, SandboxRecord>();
  readonly index = new IdIndex();

  get(idOrPrefix: string): SandboxRecord | null {
    const id = this.index.resolve(idOrPrefix, 'sandbox');
    return id ? (this.byId.get(id) ?? null) : null;
  }

  mustGet(idOrPrefix: string): SandboxRecord {
    const id = this.index.mustResolve(idOrPrefix, 'sandbox');
    return this.byId.get(id)!;
  }

  list(): SandboxRecord[] {
    return [...this.byId.values()];
  }
}

/** What the container side reads of the pods. */
export type SandboxLookup = Pick<SandboxRecords, 'get' | 'list'>;
