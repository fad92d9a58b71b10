/**
 * The daemon's configuration: the typed `Config`, and `SCHEMA`, the one table that maps each
 * TOML key to its property, type, default, checks and documentation. Loading, validation and
 * rendering all walk this table, so adding a key means adding one entry here.
 *
 * As in the native facade, optional values are `T | null` and every property is always set,
 * so a property reading as `undefined` is always a bug.
 */
import * as net from 'node:net';
import * as path from 'node:path';
import { type LogLevel, logLevels } from '../obs/logger';

export type { LogLevel };
export const CGROUP_DRIVERS = ['cgroupfs', 'systemd'] as const;
export type CgroupDriver = (typeof CGROUP_DRIVERS)[number];
export const DEVICE_ENFORCEMENTS = ['auto', 'v1', 'bpf'] as const;
export type DeviceEnforcement = (typeof DEVICE_ENFORCEMENTS)[number];
export const RUNTIME_TYPES = ['native', 'oci'] as const;
export type RuntimeType = (typeof RUNTIME_TYPES)[number];

export interface Config {
  root: string;
  runroot: string;
  listen: string;
  logLevel: LogLevel;
  /** seconds */
  shutdownTimeout: number;
  /** run the daemon under nodecri-keeper (src/linux/keeper.ts) */
  keeper: boolean;
  /** threads in libuv's pool; read once, before the pool starts */
  threadpoolSize: number;
  /** a key of `runtimes` */
  defaultRuntime: string;
  cgroup: CgroupConfig;
  /** keyed by runtime handler name (RuntimeClass `handler`) */
  runtimes: Record<string, RuntimeConfig>;
  network: NetworkConfig;
  image: ImageConfig;
  metrics: MetricsConfig;
  tracing: TracingConfig;
  streaming: StreamingConfig;
  api: ApiConfig;
}

export interface CgroupConfig {
  driver: CgroupDriver;
  defaultParent: string;
  favorDynmods: boolean;
  deviceEnforcement: DeviceEnforcement;
}

export interface RuntimeConfig {
  type: RuntimeType;
  /** the OCI runtime binary; required for `oci`, ignored for `native` */
  path: string | null;
  /** the OCI runtime's --root; null leaves the runtime's own default */
  root: string | null;
}

export interface NetworkConfig {
  cniConfigDir: string;
  cniPluginDirs: string[];
  /** seconds */
  cniConfigWait: number;
}

export interface ImageConfig {
  defaultRegistry: string;
  defaultNamespace: string;
  /** seconds; 0 means no limit */
  pullTimeout: number;
  maxConcurrentDownloads: number;
  /** a layer may unpack to this many times its compressed size; 0 means no ratio limit */
  maxLayerRatio: number;
  /** bytes any layer may unpack to, whatever its ratio */
  maxLayerRatioFloor: number;
  /** bytes no layer may unpack beyond; 0 means no cap */
  maxLayerSize: number;
  pauseImage: string;
  registries: RegistryConfig[];
}

/** One `[[registry]]` of containers-registries.conf v2 (only the keys we use). */
export interface RegistryConfig {
  /** the image-name prefix this entry applies to; null means the same as `location` */
  prefix: string | null;
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrors: MirrorConfig[];
}

export interface MirrorConfig {
  location: string;
  insecure: boolean;
}

export interface MetricsConfig {
  enabled: boolean;
  address: string;
}

export interface TracingConfig {
  enabled: boolean;
  /** OTLP/HTTP url; "" exports nothing */
  endpoint: string;
  samplingRate: number;
}

export interface StreamingConfig {
  address: string;
  /** PEM certificate (chain) of the server: https when set; needs tlsKeyFile */
  tlsCertFile: string | null;
  /** PEM private key of tlsCertFile */
  tlsKeyFile: string | null;
}

export interface ApiConfig {
  /** the CRI socket's group, a name or a numeric gid; null: root only (mode 0600) */
  socketGroup: string | null;
}

/** What a caller may override: any subset, at any depth; arrays replace whole. */
export type PartialConfig = DeepPartial<Config>;
type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

// ---- schema types ----

/** A check returns a problem ("expected an absolute path, got ...") or null when the value is fine. */
export type Check<V> = (value: V) => string | null;

/**
 * The spec for a value of TS type V. The conditional type ties the table to the interfaces
 * above: a missing property, a spec of the wrong kind, or an enum value outside the TS union
 * fails to compile.
 */
export type Spec<V> = null extends V
  ? { readonly kind: 'nullable'; readonly of: Spec<Exclude<V, null>> }
  : [V] extends [boolean]
    ? { readonly kind: 'boolean'; readonly check?: Check<V> }
    : [V] extends [string]
      ? string extends V
        ? { readonly kind: 'string'; readonly check?: Check<V> }
        : { readonly kind: 'enum'; readonly values: readonly V[]; readonly check?: Check<V> }
      : [V] extends [number]
        ? { readonly kind: 'integer' | 'float'; readonly check?: Check<V> }
        : [V] extends [readonly (infer E)[]]
          ? { readonly kind: 'array'; readonly of: Spec<E> }
          : string extends keyof V
            ? { readonly kind: 'map'; readonly of: Spec<V[string & keyof V]>; readonly name: Check<string> }
            : { readonly kind: 'table'; readonly fields: Fields<V> };

export interface Field<V> {
  /** the TOML key */
  readonly key: string;
  readonly type: Spec<V>;
  /** one line for the rendered file */
  readonly doc: string;
  /**
   * Absent means: a table's default is built from its own fields, a nullable's is null (so that
   * rendering can omit nulls), and anything else is required.
   */
  readonly default?: null extends V ? never : V;
  /** the CLI flag that overrides this key, named in override errors */
  readonly flag?: string;
  /** a commented-out TOML snippet shown under an empty list */
  readonly example?: string;
  /**
   * SIGHUP applies a changed value (to calls that start afterwards). Only keys that are read
   * per call and change nothing already made; every other key keeps its running value until
   * a restart, and a reload names it (see config/reload.ts).
   */
  readonly live?: true;
}
export type Fields<T> = { readonly [K in keyof T]-?: Field<T[K]> };

/** The erased forms the generic walkers use; every Spec<V> is assignable to AnySpec. */
export type AnySpec =
  | { readonly kind: 'string' | 'boolean' | 'integer' | 'float'; readonly check?: Check<never> }
  | { readonly kind: 'enum'; readonly values: readonly string[]; readonly check?: Check<never> }
  | { readonly kind: 'nullable' | 'array'; readonly of: AnySpec }
  | { readonly kind: 'map'; readonly of: AnySpec; readonly name: Check<string> }
  | TableSpec;
export interface TableSpec {
  readonly kind: 'table';
  readonly fields: { readonly [prop: string]: AnyField };
}
export interface AnyField {
  readonly key: string;
  readonly type: AnySpec;
  readonly doc: string;
  readonly default?: unknown;
  readonly flag?: string;
  readonly example?: string;
  readonly live?: true;
}

// ---- checks ----

const quote = (v: string): string => JSON.stringify(v);

const absolutePath: Check<string> = (v) => (path.isAbsolute(v) ? null : `expected an absolute path, got ${quote(v)}`);

const atLeast =
  (min: number): Check<number> =>
  (v) =>
    v >= min ? null : `expected at least ${min}, got ${v}`;

const between =
  (min: number, max: number): Check<number> =>
  (v) =>
    v >= min && v <= max ? null : `expected a number from ${min} to ${max}, got ${v}`;

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** host:port as net.Server.listen takes it; "[v6]:port" for IPv6, an empty host for every address. */
const hostPort: Check<string> = (v) => {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(v);
  const bad = `expected host:port, got ${quote(v)}`;
  if (m === null || Number(m[3]) > 65535) return bad;
  const [, v6, host] = m;
  if (v6 !== undefined) return net.isIPv6(v6) ? null : bad;
  return host === '' || net.isIPv4(host) || HOSTNAME.test(host) ? null : bad;
};

const httpUrlOrEmpty: Check<string> = (v) => {
  if (v === '') return null;
  const url = URL.canParse(v) ? new URL(v) : null;
  return url !== null && (url.protocol === 'http:' || url.protocol === 'https:') ? null : `expected an http(s) url or "", got ${quote(v)}`;
};

/** A registry host or a registries.conf prefix/location: no scheme, no spaces. */
const registryRef: Check<string> = (v) => (v !== '' && !v.includes('://') && !/\s/.test(v) ? null : `expected a registry reference without a scheme, got ${quote(v)}`);

const imageName: Check<string> = (v) => (v !== '' && !/\s/.test(v) ? null : `expected an image name, got ${quote(v)}`);

const repoNamespace: Check<string> = (v) => (!/\s/.test(v) && !v.startsWith('/') && !v.endsWith('/') ? null : `expected a repository namespace, got ${quote(v)}`);

/** A group as /etc/group names it (shadow-utils' rule, as useradd checks it), or a gid. */
const groupNameOrId: Check<string> = (v) =>
  (/^\d+$/.test(v) && Number(v) <= 0xfffffffe) || /^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/.test(v) ? null : `expected a group name or a numeric gid, got ${quote(v)}`;

/** Runtime names are RuntimeClass handlers, which Kubernetes requires to be DNS labels. */
const dnsLabel: Check<string> = (v) => (/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(v) ? null : `expected a dns label (a-z, 0-9, -), got ${quote(v)}`);

// ---- the table ----

const STRING = { kind: 'string' } as const;
const ABS_PATH = { kind: 'string', check: absolutePath } as const;
const HOST_PORT = { kind: 'string', check: hostPort } as const;
const BOOLEAN = { kind: 'boolean' } as const;
const SECONDS = { kind: 'integer', check: atLeast(0) } as const;
const BYTES = { kind: 'integer', check: atLeast(0) } as const;

const runtime: Spec<RuntimeConfig> = {
  kind: 'table',
  fields: {
    type: {
      key: 'type',
      type: { kind: 'enum', values: RUNTIME_TYPES },
      default: 'oci',
      doc: '"native" runs containers from this daemon; "oci" runs them with an OCI runtime binary',
    },
    path: { key: 'path', type: { kind: 'nullable', of: ABS_PATH }, doc: 'the OCI runtime binary (oci only)' },
    root: { key: 'root', type: { kind: 'nullable', of: ABS_PATH }, doc: 'state directory passed as --root (oci only)' },
  },
};

const mirror: Spec<MirrorConfig> = {
  kind: 'table',
  fields: {
    location: { key: 'location', type: { kind: 'string', check: registryRef }, doc: 'where to pull from instead' },
    insecure: { key: 'insecure', type: BOOLEAN, default: false, doc: 'allow plain http and unverified tls' },
  },
};

const registry: Spec<RegistryConfig> = {
  kind: 'table',
  fields: {
    prefix: {
      key: 'prefix',
      type: { kind: 'nullable', of: { kind: 'string', check: registryRef } },
      doc: 'image names starting with this use this entry (default: location)',
    },
    location: { key: 'location', type: { kind: 'string', check: registryRef }, doc: 'the registry to pull from' },
    insecure: { key: 'insecure', type: BOOLEAN, default: false, doc: 'allow plain http and unverified tls' },
    blocked: { key: 'blocked', type: BOOLEAN, default: false, doc: 'never pull from location itself: only the mirrors are tried (none: pulls are refused)' },
    mirrors: { key: 'mirrors', type: { kind: 'array', of: mirror }, default: [], doc: 'tried in order before location' },
  },
};

export const SCHEMA: Spec<Config> = {
  kind: 'table',
  fields: {
    root: {
      key: 'root',
      type: ABS_PATH,
      default: '/var/lib/nodecri',
      flag: '--root',
      doc: 'persistent state: images, pod and container records',
    },
    runroot: {
      key: 'runroot',
      type: ABS_PATH,
      default: '/run/nodecri',
      flag: '--runroot',
      doc: 'runtime state that must not survive a reboot: namespace pins, sockets',
    },
    listen: {
      key: 'listen',
      type: ABS_PATH,
      default: '/run/nodecri/nodecri.sock',
      flag: '--listen',
      doc: 'the unix socket the CRI gRPC server listens on',
    },
    logLevel: {
      key: 'log_level',
      type: { kind: 'enum', values: logLevels },
      default: 'info',
      flag: '--log-level',
      live: true,
      doc: `log level: ${logLevels.join(', ')} (logs are json lines)`,
    },
    shutdownTimeout: {
      key: 'shutdown_timeout',
      type: SECONDS,
      default: 10,
      doc: 'seconds in-flight RPCs may run on a graceful stop before they are cancelled',
    },
    keeper: {
      key: 'keeper',
      type: BOOLEAN,
      default: true,
      doc:
        'run the daemon under nodecri-keeper, one small process per node (same pid as the daemon) that restarts a crashed daemon, ' +
        'records the exit codes of containers that exit while no daemon runs and holds their log FIFOs so their last output is kept ' +
        '(read at start only)',
    },
    threadpoolSize: {
      key: 'threadpool_size',
      type: { kind: 'integer', check: between(1, 1024) },
      default: 16,
      doc: "threads in libuv's pool (fs calls, DNS, clones); read at start-up only, and UV_THREADPOOL_SIZE, when set, wins",
    },
    defaultRuntime: {
      key: 'default_runtime',
      type: STRING,
      default: 'native',
      doc: 'the runtime for pods that name no runtime handler; must be a [runtimes.NAME] table',
    },
    cgroup: {
      key: 'cgroup',
      type: {
        kind: 'table',
        fields: {
          driver: {
            key: 'driver',
            type: {
              kind: 'enum',
              values: CGROUP_DRIVERS,
              check: (v) => (v === 'systemd' ? 'systemd is not supported yet' : null),
            },
            default: 'cgroupfs',
            doc: 'how pod cgroups are managed; only cgroupfs is supported',
          },
          defaultParent: {
            key: 'default_parent',
            type: ABS_PATH,
            default: '/nodecri',
            doc: 'parent cgroup (from the cgroup root) for pods that give no cgroup_parent',
          },
          favorDynmods: {
            key: 'favor_dynmods',
            type: { kind: 'boolean' },
            default: true,
            doc: 'remount cgroup2 with favordynmods at start: a task move skips an RCU wait (~6 ms each here; see bench/favordynmods)',
          },
          deviceEnforcement: {
            key: 'device_enforcement',
            type: { kind: 'enum', values: DEVICE_ENFORCEMENTS },
            default: 'auto',
            doc: 'what enforces device rules: "auto" (the v1 devices controller if mounted, and a BPF program on cgroup2), "v1" or "bpf" (that one only)',
          },
        },
      },
      doc: 'cgroup management',
    },
    runtimes: {
      key: 'runtimes',
      type: { kind: 'map', of: runtime, name: dnsLabel },
      default: { native: { type: 'native', path: null, root: null } },
      doc: 'runtime handlers, one [runtimes.NAME] table each; NAME is the RuntimeClass handler',
    },
    network: {
      key: 'network',
      type: {
        kind: 'table',
        fields: {
          cniConfigDir: {
            key: 'cni_config_dir',
            type: ABS_PATH,
            default: '/etc/cni/net.d',
            flag: '--cni-config-dir',
            doc: 'where CNI network configs are read from',
          },
          cniPluginDirs: {
            key: 'cni_plugin_dirs',
            type: { kind: 'array', of: ABS_PATH },
            default: ['/opt/cni/bin', '/usr/lib/cni'],
            flag: '--cni-plugin-dir',
            doc: 'where CNI plugin binaries are searched, in order',
          },
          cniConfigWait: {
            key: 'cni_config_wait',
            type: SECONDS,
            default: 10,
            doc: 'seconds RunPodSandbox waits for a CNI config to appear before failing',
          },
        },
      },
      doc: 'pod networking through CNI',
    },
    image: {
      key: 'image',
      type: {
        kind: 'table',
        fields: {
          defaultRegistry: {
            key: 'default_registry',
            type: { kind: 'string', check: registryRef },
            default: 'docker.io',
            doc: 'registry for image names that name none',
          },
          defaultNamespace: {
            key: 'default_namespace',
            type: { kind: 'string', check: repoNamespace },
            default: 'library',
            doc: 'namespace for single-component image names on the default registry',
          },
          pullTimeout: {
            key: 'pull_timeout',
            live: true,
            type: SECONDS,
            default: 600,
            doc: 'seconds one image pull may take; 0 means no limit',
          },
          maxConcurrentDownloads: {
            key: 'max_concurrent_downloads',
            type: { kind: 'integer', check: atLeast(1) },
            default: 3,
            doc: 'layers downloaded at once, across all pulls',
          },
          maxLayerRatio: {
            key: 'max_layer_ratio',
            live: true,
            type: { kind: 'integer', check: atLeast(0) },
            default: 100,
            doc: 'a layer may unpack to this many times its compressed size (gzip bombs); 0 means no ratio limit',
          },
          maxLayerRatioFloor: {
            key: 'max_layer_ratio_floor',
            live: true,
            type: BYTES,
            default: 512 * 1024 * 1024,
            doc: 'bytes a layer may always unpack to, whatever its ratio (zeros compress ~1000x)',
          },
          maxLayerSize: {
            key: 'max_layer_size',
            live: true,
            type: BYTES,
            default: 0,
            doc: 'bytes no layer may unpack beyond, whatever its ratio; 0 means no cap',
          },
          pauseImage: {
            key: 'pause_image',
            live: true,
            type: { kind: 'string', check: imageName },
            default: 'registry.k8s.io/pause:3.9',
            doc: 'the pod infra (pause) image',
          },
          registries: {
            key: 'registries',
            live: true,
            type: { kind: 'array', of: registry },
            default: [],
            doc: 'per-registry settings, as [[registry]] in containers-registries.conf v2',
            example: [
              '[[image.registries]]',
              'prefix = "docker.io"',
              'location = "registry-1.docker.io"',
              'mirrors = [{ location = "mirror.example.com:5000", insecure = true }]',
            ].join('\n'),
          },
        },
      },
      doc: 'image pulls and name resolution',
    },
    metrics: {
      key: 'metrics',
      type: {
        kind: 'table',
        fields: {
          enabled: {
            key: 'enabled',
            type: BOOLEAN,
            default: false,
            flag: '--metrics-address',
            doc: 'serve prometheus metrics',
          },
          address: {
            key: 'address',
            type: HOST_PORT,
            default: '127.0.0.1:9090',
            flag: '--metrics-address',
            doc: 'host:port of the /metrics http server',
          },
        },
      },
      doc: 'prometheus metrics',
    },
    tracing: {
      key: 'tracing',
      type: {
        kind: 'table',
        fields: {
          enabled: { key: 'enabled', type: BOOLEAN, default: false, doc: 'trace CRI calls with opentelemetry' },
          endpoint: {
            key: 'endpoint',
            type: { kind: 'string', check: httpUrlOrEmpty },
            default: '',
            doc: 'OTLP/HTTP collector url; "" exports nothing',
          },
          samplingRate: {
            key: 'sampling_rate',
            type: { kind: 'float', check: between(0, 1) },
            default: 1,
            doc: 'fraction of calls traced, 0 to 1',
          },
        },
      },
      doc: 'opentelemetry tracing',
    },
    streaming: {
      key: 'streaming',
      type: {
        kind: 'table',
        fields: {
          address: {
            key: 'address',
            type: HOST_PORT,
            flag: '--streaming-address',
            default: '127.0.0.1:0',
            doc: 'host:port of the exec/attach/port-forward http server; port 0 picks a free one',
          },
          tlsCertFile: {
            key: 'tls_cert_file',
            type: { kind: 'nullable', of: { kind: 'string', check: absolutePath } },
            doc: 'PEM certificate of the streaming server: https with tls_key_file; unset: plain http',
          },
          tlsKeyFile: {
            key: 'tls_key_file',
            type: { kind: 'nullable', of: { kind: 'string', check: absolutePath } },
            doc: 'PEM private key of tls_cert_file (both or neither)',
          },
        },
      },
      doc: 'the streaming server',
    },
    api: {
      key: 'api',
      type: {
        kind: 'table',
        fields: {
          socketGroup: {
            key: 'socket_group',
            type: { kind: 'nullable', of: { kind: 'string', check: groupNameOrId } },
            doc: 'group of the CRI socket, a name or a gid (mode 0660); unset: root only (mode 0600)',
          },
        },
      },
      doc: 'the CRI socket',
    },
  },
};

/** The schema in its erased form, for the generic walkers. */
export const ROOT: TableSpec = SCHEMA;

// ---- walkers shared by load, validate and render ----

/** A key path: table keys and array indexes, e.g. ['network', 'cni_plugin_dirs', 1]. */
export type KeyPath = readonly (string | number)[];
export type RawTable = Record<string, unknown>;

/** `network.cni_plugin_dirs[1]`, `runtimes."odd.name".path` */
export function formatPath(at: KeyPath): string {
  let out = '';
  for (const seg of at) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += (out === '' ? '' : '.') + (/^[A-Za-z0-9_-]+$/.test(seg) ? seg : quote(seg));
  }
  return out;
}

export function isTable(v: unknown): v is RawTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** The field of `spec` with TOML key `key`; own properties only, so "toString" is unknown. */
export function fieldByKey(spec: TableSpec, key: string): [prop: string, field: AnyField] | null {
  for (const [prop, field] of Object.entries(spec.fields)) if (field.key === key) return [prop, field];
  return null;
}

export function isRequired(f: AnyField): boolean {
  return f.default === undefined && f.type.kind !== 'table' && f.type.kind !== 'nullable';
}

/**
 * Config-shaped value → TOML-shaped tree: snake_case keys, integers as bigint (as smol-toml
 * parses them), nulls omitted. Values of the wrong type and unknown properties pass through
 * unchanged so that validation reports them rather than this function dropping them.
 */
export function encode(spec: AnySpec, value: unknown): unknown {
  if (value === null) return undefined;
  switch (spec.kind) {
    case 'integer':
      return typeof value === 'number' && Number.isSafeInteger(value) ? BigInt(value) : value;
    case 'nullable':
      return encode(spec.of, value);
    case 'array':
      return Array.isArray(value) ? value.map((v) => encode(spec.of, v)) : value;
    case 'map':
      return isTable(value) ? mapEntries(value, (v) => encode(spec.of, v)) : value;
    case 'table': {
      if (!isTable(value)) return value;
      const out: [string, unknown][] = [];
      for (const [prop, v] of Object.entries(value)) {
        const field = Object.hasOwn(spec.fields, prop) ? spec.fields[prop] : undefined;
        const e = field === undefined ? v : encode(field.type, v);
        if (e !== undefined) out.push([field?.key ?? prop, e]);
      }
      return Object.fromEntries(out);
    }
    default:
      return value;
  }
}

/**
 * TOML-shaped tree (already checked) → Config-shaped value, filling absent keys with their
 * defaults. `missing` reports an absent required key.
 */
export function decode(spec: AnySpec, raw: unknown, at: KeyPath, missing: (at: KeyPath) => never): unknown {
  switch (spec.kind) {
    case 'integer':
    case 'float':
      return typeof raw === 'bigint' ? Number(raw) : raw;
    case 'nullable':
      return decode(spec.of, raw, at, missing);
    case 'array':
      return (raw as unknown[]).map((v, i) => decode(spec.of, v, [...at, i], missing));
    case 'map':
      return mapEntries(raw as RawTable, (v, name) => decode(spec.of, v, [...at, name], missing));
    case 'table': {
      const table = raw as RawTable;
      const out: RawTable = {};
      for (const [prop, f] of Object.entries(spec.fields)) {
        const p = [...at, f.key];
        if (Object.hasOwn(table, f.key)) out[prop] = decode(f.type, table[f.key], p, missing);
        else if (f.default !== undefined) out[prop] = structuredClone(f.default);
        else if (f.type.kind === 'table') out[prop] = decode(f.type, {}, p, missing);
        else if (f.type.kind === 'nullable') out[prop] = null;
        else missing(p);
      }
      return out;
    }
    default:
      return raw;
  }
}

function mapEntries(t: RawTable, fn: (v: unknown, k: string) => unknown): RawTable {
  // fromEntries defines own properties, so a "__proto__" key cannot reach a prototype
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, fn(v, k)]));
}

export function defaultConfig(): Config {
  return decode(ROOT, {}, [], (at) => {
    throw new Error(`schema: required key "${formatPath(at)}" outside a list`);
  }) as Config;
}
