/**
 * CPU usage in nano-cores needs two samples of the cumulative counter: each stats call
 * keeps its sample per object, and the rate is computed against the previous one (kubelet
 * and cadvisor do the same). The first call for an object has no rate yet.
 */
export class CpuRate {
  private readonly last = new Map<string, { usage: bigint; at: bigint }>();

  /** Records a sample and returns nano-cores since the previous one, or null. */
  sample(key: string, usageNanos: bigint, atNanos: bigint): bigint | null {
    const prev = this.last.get(key);
    this.last.set(key, { usage: usageNanos, at: atNanos });
    if (!prev || atNanos <= prev.at || usageNanos < prev.usage) return null;
    return ((usageNanos - prev.usage) * 1_000_000_000n) / (atNanos - prev.at);
  }

  forget(key: string): void {
    this.last.delete(key);
  }
}
