/**
 * Container lifecycle events for GetContainerEvents (kubelet's evented PLEG). Every
 * subscriber gets every event published after it subscribed, in order; a subscriber that
 * falls too far behind is dropped (kubelet then relists), so a stuck client can never grow
 * the daemon's memory without bound.
 */
export type ContainerEventType = 'CONTAINER_CREATED_EVENT' | 'CONTAINER_STARTED_EVENT' | 'CONTAINER_STOPPED_EVENT' | 'CONTAINER_DELETED_EVENT';

export interface ContainerEvent {
  containerId: string;
  type: ContainerEventType;
  /** nanoseconds since the epoch, as a decimal string (int64 on the wire) */
  createdAt: string;
  /** the pod's sandbox id, for looking up its status */
  sandboxId: string;
}

export interface Subscription {
  /** Resolves with the next events (at least one), or null once closed or dropped. */
  next(): Promise<ContainerEvent[] | null>;
  close(): void;
}

export class EventBus {
  private readonly subscribers = new Set<Sub>();

  constructor(private readonly maxBacklog = 10_000) {}

  publish(event: ContainerEvent): void {
    for (const s of this.subscribers) {
      if (s.queue.length >= this.maxBacklog) {
        s.closed = true;
        this.subscribers.delete(s);
      } else {
        s.queue.push(event);
      }
      s.wake?.();
    }
  }

  subscribe(): Subscription {
    const sub: Sub = { queue: [], wake: null, closed: false };
    this.subscribers.add(sub);
    return {
      next: async () => {
        while (sub.queue.length === 0 && !sub.closed) {
          await new Promise<void>((resolve) => (sub.wake = resolve));
          sub.wake = null;
        }
        if (sub.queue.length === 0) return null;
        return sub.queue.splice(0);
      },
      close: () => {
        sub.closed = true;
        this.subscribers.delete(sub);
        sub.wake?.();
      },
    };
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }
}

interface Sub {
  queue: ContainerEvent[];
  wake: (() => void) | null;
  closed: boolean;
}

/** Now, in nanoseconds since the epoch, as the CRI's int64 timestamps want it. */
export function nowNanos(): string {
  const ms = BigInt(Date.now());
  // performance.now() gives the sub-millisecond part, so that events in one ms still order.
  const sub = BigInt(Math.floor((performance.now() % 1) * 1e6));
  return (ms * 1_000_000n + sub).toString();
}
