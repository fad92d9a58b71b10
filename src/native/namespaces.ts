/**
 * Pod namespaces from the addon: create net/ipc/uts (and user, cgroup) namespaces in a
 * short-lived cloned child and pin each by bind-mounting /proc/CHILD/ns/TYPE onto DIR/TYPE;
 * unpin; bring `lo` up inside a pinned netns. No Node thread ever unshares or setns'es:
 * namespaces are per thread and all of ours are shared (style rule 5).
 *
 * Policy lives here (which sysctls are namespace-safe, argument shape); the addon does the
 * syscalls and re-checks only what keeps it safe (sysctl paths stay under /proc/sys).
 */
import path from 'node:path';
import { nativeFunction } from './binding';

export type NamespaceType = 'net' | 'ipc' | 'uts' | 'user' | 'cgroup';

export const namespaceTypes: readonly NamespaceType[] = ['net', 'ipc', 'uts', 'user', 'cgroup'];

/** One line of uid_map/gid_map: container ids [containerID, containerID+size) → host ids. */
export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface PinNamespacesOptions {
  /** Namespaces to create; at least one, no repeats. */
  types: NamespaceType[];
  /** Absolute directory for the pin files DIR/<type>; created (with parents) if missing. */
  dir: string;
  /**
   * Namespaced sysctls applied inside the new namespaces before they are pinned, in dotted
   * form ("net.ipv4.ip_forward"; write a '.' inside a component as '/', as sysctl(8) does).
   * Allowed: net.* (needs 'net'), kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* (need 'ipc').
   */
  sysctls: Record<string, string>;
  /** Required with 'user' (non-empty), refused without it. */
  uidMap: IdMapping[] | null;
  gidMap: IdMapping[] | null;
}

/** The pin path of every namespace type; null for the types not asked for. */
export type PinnedNamespaces = Record<NamespaceType, string | null>;

/** The addon's own argument: every property set. */
interface NativePinOptions {
  types: NamespaceType[];
  dir: string;
  sysctls: Array<{ key: string; value: string }>;
  uidMap: IdMapping[] | null;
  gidMap: IdMapping[] | null;
  /** write "deny" to /proc/CHILD/setgroups before gid_map */
  denySetgroups: boolean;
}

const nsPin = nativeFunction<(opts: NativePinOptions) => Promise<PinnedNamespaces>>('nsPin');
const nsUnpin = nativeFunction<(path: string) => Promise<void>>('nsUnpin');
const nsLoopbackUp = nativeFunction<(netnsPath: string) => Promise<void>>('nsLoopbackUp');
const nsSocket = nativeFunction<(netnsPath: string, family: 4 | 6) => Promise<number>>('nsSocket');

/** A pin request refused before any syscall (bad sysctl, bad type list, bad id maps). */
export class InvalidNamespaceRequestError extends Error {
  override readonly name = 'InvalidNamespaceRequestError';
  readonly code = 'EINVAL';
}

/** Components of a dotted sysctl key; '/' stands for a '.' inside a component. */
const sysctlKey = /^[A-Za-z0-9_:/-]+(\.[A-Za-z0-9_:/-]+)*$/;

/**
 * The namespace a sysctl key belongs to, or null when the key is not namespaced (setting it
 * would change the host). Follows the kernel's per-namespace sysctl tables, as the
 * Kubernetes "safe and unsafe sysctls" list and runc's validation do.
 */
export function sysctlNamespace(key: string): NamespaceType | null {
  if (key.startsWith('net.')) return 'net';
  if (key === 'kernel.sem' || key.startsWith('kernel.shm') || key.startsWith('kernel.msg')) return 'ipc';
  if (key.startsWith('fs.mqueue.')) return 'ipc';
  return null;
}

function checkIdMap(name: string, map: IdMapping[]): void {
  if (map.length === 0 || map.length > 340) {
    throw new InvalidNamespaceRequestError(`${name} must have 1 to 340 entries, not ${map.length}`);
  }
  for (const m of map) {
    for (const k of ['containerID', 'hostID', 'size'] as const) {
      if (!Number.isInteger(m[k]) || m[k] < 0 || m[k] > 0xffffffff) {
        throw new InvalidNamespaceRequestError(`${name} ${k} ${m[k]} is not an unsigned 32-bit integer`);
      }
    }
    if (m.size === 0) throw new InvalidNamespaceRequestError(`${name} entry for container id ${m.containerID} has size 0`);
  }
}

/** Validates a request without touching the kernel; throws InvalidNamespaceRequestError. */
export function checkPinRequest(opts: PinNamespacesOptions): void {
  const { types, dir } = opts;
  if (types.length === 0) throw new InvalidNamespaceRequestError('no namespace type to pin');
  for (const t of types) {
    if (!namespaceTypes.includes(t)) throw new InvalidNamespaceRequestError(`unknown namespace type ${String(t)}`);
  }
  if (new Set(types).size !== types.length) throw new InvalidNamespaceRequestError(`repeated namespace type in ${types.join(',')}`);
  if (!path.isAbsolute(dir)) throw new InvalidNamespaceRequestError(`pin directory ${dir} is not absolute`);
  for (const [key, value] of Object.entries(opts.sysctls)) {
    if (!sysctlKey.test(key) || key.split('.').some((c) => c === '' || /^\.\.?$/.test(c.replace(/\//g, '.')))) {
      throw new InvalidNamespaceRequestError(`sysctl ${JSON.stringify(key)} is not a valid sysctl name`);
    }
    const ns = sysctlNamespace(key);
    if (ns === null) {
      throw new InvalidNamespaceRequestError(`sysctl ${key} is not namespaced (allowed: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)`);
    }
    if (!types.includes(ns)) {
      throw new InvalidNamespaceRequestError(`sysctl ${key} needs a new ${ns} namespace, which is not in ${types.join(',')}`);
    }
    if (typeof value !== 'string' || value.includes('\0') || Buffer.byteLength(value) > 4096) {
      throw new InvalidNamespaceRequestError(`sysctl ${key} value is not a string of at most 4096 bytes`);
    }
  }
  const user = types.includes('user');
  if (user && (opts.uidMap === null || opts.gidMap === null)) {
    throw new InvalidNamespaceRequestError('a user namespace needs uidMap and gidMap');
  }
  if (!user && (opts.uidMap !== null || opts.gidMap !== null)) {
    throw new InvalidNamespaceRequestError('uidMap and gidMap are only for a new user namespace');
  }
  if (opts.uidMap !== null) checkIdMap('uidMap', opts.uidMap);
  if (opts.gidMap !== null) checkIdMap('gidMap', opts.gidMap);
}

/**
 * Creates the namespaces, applies the sysctls inside them and pins each at DIR/<type>
 * (a pin that already exists is an EEXIST error, never overwritten). On failure nothing is
 * left: pins made so far are unmounted and removed, and directories created are removed.
 *
 * With 'user', the new user namespace owns the others and setgroups(2) is denied in it
 * (the addon can also allow it; this facade does not offer that yet).
 */
export async function pinNamespaces(opts: PinNamespacesOptions): Promise<PinnedNamespaces> {
  checkPinRequest(opts);
  return nsPin({
    types: [...opts.types],
    dir: opts.dir,
    sysctls: Object.entries(opts.sysctls).map(([key, value]) => ({ key, value })),
    uidMap: opts.uidMap,
    gidMap: opts.gidMap,
    denySetgroups: true,
  });
}

/**
 * Unmounts (MNT_DETACH) and removes one pin file. Idempotent: a path that is not mounted or
 * does not exist resolves. The namespace itself goes away once nothing else holds it.
 */
export function unpinNamespace(pinPath: string): Promise<void> {
  return nsUnpin(pinPath);
}

/** Unpins every non-null path of a pinNamespaces() result; idempotent. */
export async function unpinNamespaces(pins: PinnedNamespaces): Promise<void> {
  for (const t of namespaceTypes) {
    const p = pins[t];
    if (p !== null) await nsUnpin(p);
  }
}

/**
 * Sets `lo` up inside the network namespace at `netnsPath` (a pin, or /proc/PID/ns/net),
 * from a short-lived cloned child; replaces exec'ing the loopback CNI plugin.
 */
export function bringUpLoopback(netnsPath: string): Promise<void> {
  return nsLoopbackUp(netnsPath);
}

/**
 * A non-blocking, unconnected TCP socket (IPv4 or IPv6) made inside the network namespace at
 * `netnsPath` (a pin): it stays there whatever thread uses it, so the caller connects it
 * from the loop (net.Socket({ fd }).connect). The addon enters the namespace on a thread of
 * its own that ends at once, never on the loop or a pool thread. The fd is the caller's.
 */
export function socketInNetns(netnsPath: string, family: 4 | 6 = 4): Promise<number> {
  return nsSocket(netnsPath, family);
}
