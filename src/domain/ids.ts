/**
 * Sandbox and container ids and names. Ids are 64 random hex chars, as the peers make
 * them; crictl and kubelet may use any unique prefix, which IdIndex resolves.
 */
import { randomBytes } from 'node:crypto';
import { invalidArgument, notFound } from './errors';

/** Ids are 64 hex digits (newId); anything else under our dirs is not ours to judge. */
export const objectIdPattern = /^[0-9a-f]{64}$/;

export function newId(): string {
  return randomBytes(32).toString('hex');
}

const delimiter = '_';

/** k8s_<name>_<namespace>_<uid>_<attempt>, as CRI-O and dockershim name pods. */
export function sandboxName(meta: { name: string; namespace: string; uid: string; attempt: number }): string {
  return ['k8s', meta.name, meta.namespace, meta.uid, String(meta.attempt)].join(delimiter);
}

/** k8s_<container>_<pod>_<namespace>_<uid>_<attempt>. */
export function containerName(container: { name: string; attempt: number }, pod: { name: string; namespace: string; uid: string }): string {
  return ['k8s', container.name, pod.name, pod.namespace, pod.uid, String(container.attempt)].join(delimiter);
}

/**
 * Resolves full ids from unique prefixes. Lookups are linear over a sorted array with a
 * binary search to the first candidate: O(log n) for the hundreds of ids a node holds.
 */
export class IdIndex {
  private ids: string[] = [];

  add(id: string): void {
    const i = this.lowerBound(id);
    if (this.ids[i] !== id) this.ids.splice(i, 0, id);
  }

  delete(id: string): void {
    const i = this.lowerBound(id);
    if (this.ids[i] === id) this.ids.splice(i, 1);
  }

  has(id: string): boolean {
    return this.ids[this.lowerBound(id)] === id;
  }

  /**
   * The full id for `prefix`; null when none matches. `what` names the kind of object in
   * the errors ("sandbox", "container"). An empty or ambiguous prefix is invalid.
   */
  resolve(prefix: string, what: string): string | null {
    if (prefix === '') throw invalidArgument(`${what} id is empty`);
    const i = this.lowerBound(prefix);
    const first = this.ids[i];
    if (first === undefined || !first.startsWith(prefix)) return null;
    const second = this.ids[i + 1];
    if (second !== undefined && second.startsWith(prefix) && first !== prefix) {
      throw invalidArgument(`${what} id prefix ${prefix} is ambiguous`);
    }
    return first;
  }

  /** Like resolve, but a miss is a not-found error naming the id. */
  mustResolve(prefix: string, what: string): string {
    const id = this.resolve(prefix, what);
    if (id === null) throw notFound(`${what} ${prefix} not found`);
    return id;
  }

  private lowerBound(key: string): number {
    let lo = 0;
    let hi = this.ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ids[mid] < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
