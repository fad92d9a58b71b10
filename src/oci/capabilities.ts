/**
 * Capability sets from the runtime's default set and the CRI's add/drop lists.
 *
 * Rules (containerd's and CRI-O's, which agree):
 * - "ALL" in add starts from every capability, "ALL" in drop from none; then the named adds
 *   are added and the named drops removed, so add [ALL] drop [CHOWN] is all but CHOWN and
 *   drop [ALL] add [KILL] is just KILL.
 * - Names are accepted with or without the CAP_ prefix, in any case; an unknown name is an
 *   invalid argument naming it.
 * - Inheritable is empty (CVE-2022-24769: a non-empty inheritable set lets file
 *   capabilities raise a non-root process above the bounding-set intent).
 * - Root (uid 0): bounding = effective = permitted = the set.
 *   Non-root: effective and permitted empty, as the kernel would leave them after execve
 *   anyway and as runc/containerd give non-root processes (CapEff 0): the set only bounds
 *   what a setuid or file-capability binary may gain.
 * - Ambient capabilities (add_ambient_capabilities) are also put in the bounding,
 *   inheritable and permitted sets (the kernel requires ambient ⊆ permitted ∩ inheritable)
 *   and in effective, so a non-root process keeps exactly them across execve.
 */
import { invalidArgument } from '../domain/errors';
import type { OciCapabilities } from './types';

/** Every capability the kernel defines as of Linux 6.x, in number order (CAP_CHOWN = 0). */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/** CRI-O's default set, which nodecri shares (containerd's adds MKNOD, NET_RAW, SYS_CHROOT, SETFCAP, AUDIT_WRITE). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_KILL',
];

/**
 * The capabilities this kernel knows: ALL_CAPABILITIES up to /proc/sys/kernel/cap_last_cap
 * (null: all of them). A runtime must not ask for a capability the kernel lacks.
 */
/** Capability names from a /proc/PID/status mask such as CapPrm ("000001fffeffffff"). */
export function capabilitiesFromMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim()}`);
  return ALL_CAPABILITIES.filter((_c, i) => (mask >> BigInt(i)) & 1n);
}

export function knownCapabilities(capLastCap: number | null): string[] {
  return capLastCap === null ? [...ALL_CAPABILITIES] : ALL_CAPABILITIES.slice(0, capLastCap + 1);
}

/** "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN" → "CAP_NET_ADMIN"; unknown names throw. */
export function normalizeCapability(name: string, field: string): string {
  const upper = name.trim().toUpperCase();
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!ALL_CAPABILITIES.includes(full)) throw invalidArgument(`${field}: unknown capability ${JSON.stringify(name)}`);
  return full;
}

const isAll = (n: string) => n.trim().toUpperCase() === 'ALL' || n.trim().toUpperCase() === 'CAP_ALL';

export interface CapabilityRequest {
  /** the runtime's default set (CAP_ names or bare names) */
  defaults: readonly string[];
  add: readonly string[];
  drop: readonly string[];
  ambient: readonly string[];
  privileged: boolean;
  uid: number;
  /** /proc/sys/kernel/cap_last_cap, or null for every capability we know */
  capLastCap: number | null;
  /**
   * The capabilities the daemon itself holds (its permitted set), or null for no limit. A
   * container can never be given more: here root lacks CAP_SYS_RESOURCE, and asking capset
   * for it would fail the whole container, so "all" means all that the host can give.
   */
  hostCapabilities: readonly string[] | null;
}

/** The bounding set alone (what the seccomp default profile keys its exceptions on). */
export function boundingSet(req: CapabilityRequest): string[] {
  return computeCapabilities(req).bounding;
}

export function computeCapabilities(req: CapabilityRequest): OciCapabilities {
  const known = knownCapabilities(req.capLastCap).filter((c) => req.hostCapabilities === null || req.hostCapabilities.includes(c));
  const order = (set: Set<string>) => known.filter((c) => set.has(c));
  let set: Set<string>;
  if (req.privileged) {
    set = new Set(known);
  } else {
    set = new Set(req.defaults.map((c) => normalizeCapability(c, 'default capabilities')));
    if (req.add.some(isAll)) set = new Set(known);
    if (req.drop.some(isAll)) set = new Set();
    for (const c of req.add) if (!isAll(c)) set.add(normalizeCapability(c, 'capabilities.add_capabilities'));
    for (const c of req.drop) if (!isAll(c)) set.delete(normalizeCapability(c, 'capabilities.drop_capabilities'));
  }
  const ambient = new Set<string>();
  for (const c of req.ambient) {
    if (isAll(c)) for (const k of known) ambient.add(k);
    else ambient.add(normalizeCapability(c, 'capabilities.add_ambient_capabilities'));
  }
  for (const c of ambient) set.add(c);
  // A capability this kernel does not have cannot be granted; drop it rather than fail at exec.
  const bounding = order(set);
  const amb = order(ambient);
  const root = req.uid === 0;
  return {
    bounding,
    effective: root ? bounding : amb,
    permitted: root ? bounding : amb,
    inheritable: amb,
    ambient: amb,
  };
}
