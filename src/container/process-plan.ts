/**
 * The last step of the translation chain (container spec -> OCI spec, oci/generate.ts ->
 * the addon's process plan, here): the OCI runtime spec we saved as config.json, turned
 * into the addon's ProcessSpec (for the container) or ExecSpec (for an exec into it).
 * config.json stays the record of what was asked; this is the one place that knows both
 * shapes. It adds no policy of its own: what config.json cannot say (the host's cgroup
 * layout, the stdio, the /dev symlinks the runtime-spec makes the runtime's job) comes from
 * the caller or from src/oci/. The addon's binding (native/process.ts, with the encodings
 * of native/process-spec.ts) then only turns names into numbers.
 */
import type { ExecSpec, ProcessIdentity, ProcessSpec, SeccompSpec, StdioSpec } from '../native/process';
import { DEV_SYMLINKS, isDefaultDevice } from '../oci/devices';
import type { OciDevice, OciMount, OciSeccomp, OciSpec } from '../oci/types';
import type { CgroupMode, CgroupPaths } from '../linux/cgroups';

/** How the container sees cgroups: the host's layout and its own cgroup's dirs. */
export interface CgroupView {
  mode: CgroupMode;
  paths: CgroupPaths;
}

/**
 * The spec's `cgroup` mount made concrete for this host, as runc does: cgroup2 on a v2
 * host; on v1 (and hybrid) a tmpfs at /sys/fs/cgroup with the container's own cgroup dir
 * of each hierarchy bound at /sys/fs/cgroup/<controller>, read-only unless the mount was rw.
 */
export function cgroupMounts(m: OciMount, view: CgroupView): OciMount[] {
  const ro = m.options.includes('ro');
  if (view.mode === 'v2') return [{ ...m, type: 'cgroup2', source: 'cgroup2' }];
  const out: OciMount[] = [{ destination: m.destination, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'noexec', 'nodev', 'mode=755'] }];
  const seen = new Set<string>();
  for (const [controller, dir] of Object.entries(view.paths)) {
    if (!dir || seen.has(dir)) continue;
    seen.add(dir);
    out.push({
      destination: `${m.destination}/${controller}`,
      type: 'bind',
      source: dir,
      options: ['rbind', 'nosuid', 'noexec', 'nodev', ro ? 'ro' : 'rw'],
    });
  }
  return out;
}

export interface StdioPlan {
  stdin: StdioSpec;
  stdout: StdioSpec;
  stderr: StdioSpec;
}

function seccompOf(s: OciSeccomp | undefined): SeccompSpec | null {
  if (!s) return null;
  return {
    defaultAction: s.defaultAction,
    defaultErrnoRet: s.defaultErrnoRet ?? null,
    architectures: s.architectures,
    flags: s.flags ?? [],
    syscalls: s.syscalls.map((r) => ({
      names: r.names,
      action: r.action,
      errnoRet: r.errnoRet ?? null,
      args: (r.args ?? []).map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo ?? 0, op: a.op })),
    })),
  };
}

function identity(spec: OciSpec, args: string[], cgroupProcs: string[], stdio: StdioPlan, terminal: boolean): ProcessIdentity {
  const p = spec.process;
  return {
    args,
    env: p.env,
    cwd: p.cwd,
    uid: p.user.uid,
    gid: p.user.gid,
    additionalGids: p.user.additionalGids,
    umask: p.user.umask ?? null,
    capabilities: p.capabilities,
    noNewPrivileges: p.noNewPrivileges,
    rlimits: p.rlimits,
    oomScoreAdj: p.oomScoreAdj ?? null,
    seccomp: seccompOf(spec.linux.seccomp),
    cgroupProcs,
    terminal,
    ...stdio,
  };
}

/**
 * linux.devices as the addon makes them. A default device (the same node on every host)
 * names the host's node too: where mknod is refused (a user namespace) it is bound instead.
 */
export function deviceSpecs(devices: readonly OciDevice[]): ProcessSpec['devices'] {
  return devices.map((d) => ({
    path: d.path,
    type: d.type,
    major: d.major,
    minor: d.minor,
    fileMode: d.fileMode ?? null,
    uid: d.uid ?? null,
    gid: d.gid ?? null,
    hostPath: isDefaultDevice(d) ? d.path : null,
  }));
}

/** The /dev symlinks (oci/devices.ts), made when something is mounted at /dev. */
export function devSymlinks(mounts: readonly Pick<OciMount, 'destination'>[]): ProcessSpec['symlinks'] {
  const hasDev = mounts.some((m) => m.destination.replace(/\/+$/, '') === '/dev');
  return hasDev ? DEV_SYMLINKS.map((l) => ({ path: l.path, target: l.target })) : [];
}

export function containerProcessSpec(spec: OciSpec, cgroupProcs: string[], stdio: StdioPlan, cgroups: CgroupView): ProcessSpec {
  return {
    ...identity(spec, spec.process.args, cgroupProcs, stdio, spec.process.terminal),
    rootfs: spec.root.path,
    rootReadonly: spec.root.readonly,
    rootPropagation: spec.linux.rootfsPropagation ?? null,
    namespaces: spec.linux.namespaces.filter((n) => n.type !== 'time').map((n) => ({ type: n.type as Exclude<typeof n.type, 'time'>, path: n.path ?? null })),
    uidMappings: (spec.linux.uidMappings ?? []).map((m) => ({ containerId: m.containerID, hostId: m.hostID, size: m.size })),
    gidMappings: (spec.linux.gidMappings ?? []).map((m) => ({ containerId: m.containerID, hostId: m.hostID, size: m.size })),
    mounts: spec.mounts
      .flatMap((m) => (m.type === 'cgroup' ? cgroupMounts(m, cgroups) : [m]))
      .map((m) => ({ destination: m.destination, type: m.type, source: m.source, options: m.options })),
    devices: deviceSpecs(spec.linux.devices),
    symlinks: devSymlinks(spec.mounts),
    hostname: spec.hostname ?? null,
    domainname: null,
    maskedPaths: spec.linux.maskedPaths,
    readonlyPaths: spec.linux.readonlyPaths,
    sysctls: spec.linux.sysctl,
  };
}

/** An exec runs as the container's process does, with its own command and stdio. */
export function execProcessSpec(spec: OciSpec, args: string[], cgroupProcs: string[], stdio: StdioPlan, terminal: boolean): ExecSpec {
  return identity(spec, args, cgroupProcs, stdio, terminal);
}
