/**
 * Pure validation, in two passes (as CRI-O splits per-key checks from whole-config ones):
 * - checkLayer runs on each source on its own (a file, or the flag overrides) before merging:
 *   unknown keys, types and every per-key check in SCHEMA. So each file must be valid by itself,
 *   and errors name the file that holds the bad key.
 * - crossCheck runs once on the merged Config: rules that span keys, which may come from
 *   different files. Its errors name whichever source last set the key involved.
 */
import { type AnyField, type AnySpec, type Check, type Config, type KeyPath, type RawTable } from './schema';
import { ROOT, encode, fieldByKey, formatPath, isTable } from './schema';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    /** the file, "flag --x", "overrides" or "defaults" */
    readonly source: string,
    /** the full key path, when the error is about one key */
    readonly key: string | null,
  ) {
    super(message);
  }

  static atKey(source: string, at: KeyPath, problem: string): ConfigError {
    const key = formatPath(at);
    return new ConfigError(`${source}: key "${key}": ${problem}`, source, key);
  }
}

/** One source of settings, TOML-shaped; `label` names it in errors, per field for flags. */
export interface Layer {
  readonly raw: RawTable;
  readonly label: (field: AnyField | null) => string;
}

/** Which source last set each key path (formatted); filled by checkLayer, read by sourceOf. */
export type Provenance = Map<string, string>;

/** The source of the nearest recorded key at or above `at`. */
export function sourceOf(provenance: Provenance, at: KeyPath): string {
  for (let n = at.length; n > 0; n--) {
    const source = provenance.get(formatPath(at.slice(0, n)));
    if (source !== undefined) return source;
  }
  return 'defaults';
}

export function checkLayer(layer: Layer, provenance: Provenance): void {
  checkValue(ROOT, layer.raw, [], null, layer, provenance);
}

function typeName(v: unknown): string {
  if (typeof v === 'bigint') return 'integer';
  if (typeof v === 'number') return 'float';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Date) return 'datetime';
  if (isTable(v)) return 'table';
  if (v === null || v === undefined) return 'nothing';
  return typeof v;
}

function checkValue(spec: AnySpec, v: unknown, at: KeyPath, field: AnyField | null, layer: Layer, provenance: Provenance): void {
  const fail = (problem: string): never => {
    throw ConfigError.atKey(layer.label(field), at, problem);
  };
  const expect = (ok: boolean, what: string): void => {
    if (!ok) fail(`expected ${what}, got ${typeName(v)}`);
  };
  const run = (check: Check<never> | undefined, value: unknown): void => {
    const problem = check === undefined ? null : (check as Check<unknown>)(value);
    if (problem !== null) fail(problem);
  };
  switch (spec.kind) {
    case 'nullable':
      return checkValue(spec.of, v, at, field, layer, provenance);
    case 'string':
      expect(typeof v === 'string', 'a string');
      return run(spec.check, v);
    case 'boolean':
      expect(typeof v === 'boolean', 'a boolean');
      return run(spec.check, v);
    case 'enum':
      if (typeof v !== 'string' || !spec.values.includes(v)) {
        fail(`expected one of ${spec.values.join(', ')}, got ${typeof v === 'string' ? JSON.stringify(v) : typeName(v)}`);
      }
      return run(spec.check, v);
    case 'integer':
      expect(typeof v === 'bigint', 'an integer');
      if (!Number.isSafeInteger(Number(v))) fail(`integer ${v} out of range`);
      return run(spec.check, Number(v));
    case 'float':
      expect(typeof v === 'bigint' || typeof v === 'number', 'a number');
      return run(spec.check, Number(v));
    case 'array':
      if (!Array.isArray(v)) return expect(false, 'an array');
      v.forEach((e, i) => checkValue(spec.of, e, [...at, i], field, layer, provenance));
      return;
    case 'map':
      if (!isTable(v)) return expect(false, 'a table');
      for (const [name, e] of Object.entries(v)) {
        const p = [...at, name];
        const problem = spec.name(name);
        if (problem !== null) throw ConfigError.atKey(layer.label(field), p, problem);
        provenance.set(formatPath(p), layer.label(field));
        checkValue(spec.of, e, p, field, layer, provenance);
      }
      return;
    case 'table':
      if (!isTable(v)) return expect(false, 'a table');
      for (const [key, e] of Object.entries(v)) {
        const p = [...at, key];
        const found = fieldByKey(spec, key);
        if (found === null) {
          const source = layer.label(null);
          throw new ConfigError(`${source}: unknown key "${formatPath(p)}"`, source, formatPath(p));
        }
        provenance.set(formatPath(p), layer.label(found[1]));
        checkValue(found[1].type, e, p, found[1], layer, provenance);
      }
      return;
  }
}

/** Rules that span keys: [key path, problem]. */
function* crossIssues(c: Config): Generator<[KeyPath, string]> {
  if (!Object.hasOwn(c.runtimes, c.defaultRuntime)) {
    const have = Object.keys(c.runtimes).join(', ') || 'none';
    yield [['default_runtime'], `no runtime named ${JSON.stringify(c.defaultRuntime)} (have: ${have})`];
  }
  for (const [name, r] of Object.entries(c.runtimes)) {
    if (r.type === 'oci' && r.path === null) yield [['runtimes', name, 'path'], 'required for an oci runtime'];
  }
  const { tlsCertFile, tlsKeyFile } = c.streaming;
  if (tlsCertFile !== null && tlsKeyFile === null) yield [['streaming', 'tls_key_file'], 'required with streaming.tls_cert_file (both or neither)'];
  if (tlsKeyFile !== null && tlsCertFile === null) yield [['streaming', 'tls_cert_file'], 'required with streaming.tls_key_file (both or neither)'];
  // registries.conf rejects two entries for one prefix; which would win is not obvious
  const seen = new Map<string, number>();
  for (const [i, r] of c.image.registries.entries()) {
    const prefix = r.prefix ?? r.location;
    const first = seen.get(prefix);
    if (first !== undefined) {
      yield [['image', 'registries', i, 'prefix'], `prefix ${JSON.stringify(prefix)} already used by registries[${first}]`];
    }
    seen.set(prefix, i);
  }
}

export function crossCheck(config: Config, source: (at: KeyPath) => string): void {
  for (const [at, problem] of crossIssues(config)) throw ConfigError.atKey(source(at), at, problem);
}

/** Validates a Config built in code (e.g. in tests or on reload); errors name `source`. */
export function validateConfig(config: Config, source = 'config'): void {
  checkLayer({ raw: encode(ROOT, config) as RawTable, label: () => source }, new Map());
  crossCheck(config, () => source);
}
