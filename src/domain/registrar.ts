/**
 * Name reservations (after CRI-O's registrar): a name maps to exactly one id and an id to
 * at most one name. Reserving a name already held by the same id is a no-op; by another
 * id it fails and says who holds it. Used for the k8s_ names of sandboxes and containers.
 */
import { RuntimeError } from './errors';

/** An already-exists error, so that it reaches the CRI caller as ALREADY_EXISTS as it is. */
export class NameTakenError extends RuntimeError {
  constructor(
    readonly reservedName: string,
    readonly holder: string,
  ) {
    super('already-exists', `name ${reservedName} is reserved for ${holder}`);
  }
}

export class Registrar {
  private readonly byName = new Map<string, string>();
  private readonly byId = new Map<string, string>();

  reserve(name: string, id: string): void {
    const holder = this.byName.get(name);
    if (holder !== undefined) {
      if (holder === id) return;
      throw new NameTakenError(name, holder);
    }
    const previous = this.byId.get(id);
    if (previous !== undefined) this.byName.delete(previous);
    this.byName.set(name, id);
    this.byId.set(id, name);
  }

  /** The id holding `name`, or null. */
  get(name: string): string | null {
    return this.byName.get(name) ?? null;
  }

  release(name: string): void {
    const id = this.byName.get(name);
    if (id === undefined) return;
    this.byName.delete(name);
    this.byId.delete(id);
  }

  releaseId(id: string): void {
    const name = this.byId.get(id);
    if (name !== undefined) this.release(name);
  }

  get size(): number {
    return this.byName.size;
  }
}
