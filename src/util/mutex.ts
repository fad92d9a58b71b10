/**
 * Mutual exclusion for async sections: a Mutex runs them one at a time in call order (the
 * image store's files); a KeyedMutex does so per key while different keys proceed in
 * parallel (kubelet retries a stop while the first is running, and a remove must not
 * interleave with it). A section that throws releases the lock like one that returns.
 */
import { Semaphore } from './semaphore';

export class Mutex {
  private readonly slot = new Semaphore(1);

  run<T>(fn: () => Promise<T>): Promise<T> {
    return this.slot.run(fn);
  }
}

export class KeyedMutex {
  /** A key's mutex lives while someone holds or waits for it. */
  private readonly keys = new Map<string, { slot: Semaphore; users: number }>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let k = this.keys.get(key);
    if (!k) this.keys.set(key, (k = { slot: new Semaphore(1), users: 0 }));
    k.users++;
    try {
      return await k.slot.run(fn);
    } finally {
      if (--k.users === 0) this.keys.delete(key);
    }
  }

  /** Keys held or waited for now. */
  get size(): number {
    return this.keys.size;
  }
}
