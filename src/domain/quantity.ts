/**
 * Kubernetes resource quantities ("64Mi", "1G", "500k", "1e3", "0.5Gi") to bytes, for the
 * annotations that carry sizes (io.kubernetes.cri-o.ShmSize). Rejects anything that is not a
 * quantity rather than guessing.
 */
const binary: Record<string, bigint> = { Ki: 1n << 10n, Mi: 1n << 20n, Gi: 1n << 30n, Ti: 1n << 40n, Pi: 1n << 50n, Ei: 1n << 60n };
const decimal: Record<string, bigint> = { '': 1n, k: 10n ** 3n, M: 10n ** 6n, G: 10n ** 9n, T: 10n ** 12n, P: 10n ** 15n, E: 10n ** 18n };

/** Bytes for a quantity, rounded up to a whole byte; throws on anything malformed. */
export function parseQuantity(text: string): bigint {
  const m = /^\+?(\d+)(?:\.(\d+))?(?:(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)|[eE](\d+))?$/.exec(text.trim());
  if (!m || text.trim() === '') throw new Error(`invalid quantity ${JSON.stringify(text)}`);
  const [, whole, frac = '', suffix = '', exp] = m;
  const multiplier = exp !== undefined ? 10n ** BigInt(exp) : (binary[suffix] ?? decimal[suffix]);
  const scale = 10n ** BigInt(frac.length);
  const numerator = BigInt(whole + frac) * multiplier;
  return (numerator + scale - 1n) / scale;
}
