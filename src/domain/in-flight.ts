/**
 * Create-once by name. kubelet retries a RunPodSandbox or CreateContainer whose deadline
 * passed on its side while the first call is still working; the retry must get the same
 * object, not a second one nor "name reserved". So the first call registers its creation
 * under the name, and a call that finds one running joins it: it gets the same id, or the
 * same error. The name is free again as soon as the creation settles, either way.
 */
export interface InFlightOptions {
  /**
   * A joiner waits at most this long, then gets error(name); the creation goes on (CRI-O's
   * resource store bounds a retry's wait the same way). Without it a joiner waits as long
   * as the creation takes.
   */
  joinTimeout?: { ms: number; error: (name: string) => Error };
}

export class InFlight<T> {
  private readonly running = new Map<string, Promise<T>>();

  constructor(private readonly opts: InFlightOptions = {}) {}

  /** The running creation of `name` to wait for, or null when there is none. */
  join(name: string): Promise<T> | null {
    const pending = this.running.get(name);
    if (!pending) return null;
    const bound = this.opts.joinTimeout;
    return bound ? withTimeout(pending, bound.ms, () => bound.error(name)) : pending;
  }

  /**
   * Runs `create` as the creation of `name`; it is registered before this returns, so a
   * call after it (even in the same tick) joins it. The caller checks join() first: a
   * second start of a running name is a bug.
   */
  async start(name: string, create: () => Promise<T>): Promise<T> {
    if (this.running.has(name)) throw new Error(`${name} is already being created`);
    const creation = create();
    this.running.set(name, creation);
    try {
      return await creation;
    } finally {
      if (this.running.get(name) === creation) this.running.delete(name);
    }
  }

  /** Names being created now. */
  get size(): number {
    return this.running.size;
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
