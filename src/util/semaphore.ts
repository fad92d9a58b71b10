/**
 * A counting semaphore: at most `max` holders at once, waiters served in arrival order. A
 * release hands the slot straight to the first waiter, so a newcomer never overtakes the
 * queue. Used for image downloads, process creates and execs, and (with max 1) as the
 * mutex of ./mutex.ts.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly max: number) {
    if (!(max >= 1)) throw new RangeError(`a semaphore needs at least one slot, not ${max}`);
  }

  /** Holders now. */
  get holders(): number {
    return this.active;
  }

  /** Callers waiting for a slot now. */
  get waiters(): number {
    return this.waiting.length;
  }

  /**
   * Resolves with a release function (idempotent) once a slot is free; rejects with the
   * signal's reason if it aborts first, and then holds no place in the queue.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    const grant = (): (() => void) => {
      let released = false;
      return () => {
        if (released) return;
        released = true;
        this.active--;
        this.waiting.shift()?.();
      };
    };
    if (this.active < this.max) {
      this.active++;
      return Promise.resolve(grant());
    }
    return new Promise((resolve, reject) => {
      const go = () => {
        signal?.removeEventListener('abort', onAbort);
        this.active++;
        resolve(grant());
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(go);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      this.waiting.push(go);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Runs `fn` holding a slot (never synchronously inside the call), released however it ends. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
