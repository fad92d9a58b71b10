/**
 * The OCI runtime spec (config.json) of a container, from its image config, its container
 * spec (the domain's, converted from the CRI ContainerConfig by src/cri/convert) and its
 * pod sandbox: CreateContainer's spec step, the first of the translation chain (container
 * spec -> OCI spec -> the addon's process plan, container/process-plan.ts), as CRI-O does
 * it in internal/factory/container and containerd in its container_create_linux.go. The
 * runtime's policy defaults (capabilities, masked and read-only paths, kernel mounts,
 * default devices and device rules) are applied here and in the files below, and nowhere
 * later: config.json states everything the container gets (but the /dev symlinks, which it
 * has no field for). Pure apart from reading: the image's /etc/passwd and /etc/group, the
 * host paths of mounts and devices (stat), a Localhost seccomp profile, and
 * /proc/self/mountinfo when a mount asks for propagation. Each rule is described where it is implemented:
 *   process and env      here (commandLine, environment)
 *   user and groups      user.ts
 *   capabilities         capabilities.ts
 *   seccomp              seccomp.ts, seccomp-default.ts
 *   mounts               mounts.ts
 *   devices              devices.ts
 *   stop signal          signals.ts
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { failedPrecondition, invalidArgument } from '../domain/errors';
import type { ContainerSpec } from '../container/spec';
import { noResources, type Resources } from '../linux/cgroups';
import type { NamespaceMode, SandboxRecord } from '../sandbox/model';
import { DEFAULT_CAPABILITIES, computeCapabilities } from './capabilities';
import { cgroupDeviceRules, containerDevices } from './devices';
import { containerMounts } from './mounts';
import { resolveSeccomp } from './seccomp';
import { stopSignal, type StopSignal } from './signals';
import { OCI_VERSION, type OciDeviceCgroup, type OciNamespace, type OciResources, type OciRlimit, type OciSpec } from './types';
import { resolveUser, type ResolvedUser } from './user';

/** The image config fields the spec needs (OCI image-spec config, null where absent). */
export interface ImageConfig {
  /** USER: "", "name", "uid", "name:group", "uid:gid" */
  user: string | null;
  /** "KEY=value" entries */
  env: string[] | null;
  entrypoint: string[] | null;
  cmd: string[] | null;
  workingDir: string | null;
  stopSignal: string | null;
  /** VOLUME paths */
  volumes: string[] | null;
  labels: Record<string, string> | null;
}

/** The runtime's configured defaults. */
export interface RuntimeDefaults {
  /** the capability set of an unprivileged container (CAP_ names or bare) */
  capabilities: readonly string[];
  rlimits: OciRlimit[];
  /** pids.max of every container; null for none */
  pidsLimit: number | null;
  /** Node's process.arch of the host: picks the seccomp architectures */
  arch: string;
  /** /proc/sys/kernel/cap_last_cap; null: every capability nodecri knows */
  capLastCap: number | null;
  /** what the daemon may grant (its permitted set); null: no limit */
  hostCapabilities: readonly string[] | null;
  /**
   * Give unprivileged containers a cgroup namespace. Off by default: the container keeps
   * the host's (runc's v1 behaviour); containerd turns it on for cgroup v2 hosts.
   */
  cgroupNamespace: boolean;
}

export function defaultRuntimeDefaults(): RuntimeDefaults {
  return {
    capabilities: [...DEFAULT_CAPABILITIES],
    rlimits: [],
    pidsLimit: null,
    arch: process.arch,
    capLastCap: null,
    hostCapabilities: null,
    cgroupNamespace: false,
  };
}

export interface GenerateInput {
  containerId: string;
  /** what the container is asked to be (the CRI layer's conversion of its config) */
  spec: ContainerSpec;
  /** the image as resolved (a name or digest reference), for the annotation */
  imageName: string;
  imageConfig: ImageConfig;
  /** the mounted rootfs (overlay mountpoint); its /etc/passwd and /etc/group are read */
  rootfs: string;
  sandbox: SandboxRecord;
  /** the container's CRI log file, absolute; null when kubelet gave none */
  logPath: string | null;
  /** the pod's shared PID namespace (the infra process's /proc/PID/ns/pid); null when it has none */
  podPidNamespace: string | null;
  /** for pid mode TARGET: the pid of target_id's container process; null otherwise */
  targetPid: number | null;
  defaults: RuntimeDefaults;
  /** /proc/self/mountinfo text to check propagation against; null: read it when needed */
  mountInfo: string | null;
}

export interface GeneratedContainer {
  spec: OciSpec;
  /** what StopContainer sends first */
  stopSignal: StopSignal;
  user: ResolvedUser;
  /** the same resources as the spec's, as the cgroup manager takes them */
  resources: Resources;
  stdin: boolean;
  stdinOnce: boolean;
  tty: boolean;
  /** image VOLUMEs no mount covers: left as part of the writable rootfs */
  uncoveredVolumes: string[];
}

/** kubelet's default ProcMount masks (securitycontext.defaultMaskedPaths). */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

/** kubelet's default read-only /proc paths. */
export const DEFAULT_READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const DEFAULT_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Annotation keys; the io.kubernetes.cri.* ones are containerd's, which sandboxed runtimes and NRI read. */
export const ANNOTATIONS = {
  containerType: 'io.kubernetes.cri.container-type',
  containerName: 'io.kubernetes.cri.container-name',
  sandboxId: 'io.kubernetes.cri.sandbox-id',
  sandboxName: 'io.kubernetes.cri.sandbox-name',
  sandboxNamespace: 'io.kubernetes.cri.sandbox-namespace',
  sandboxUid: 'io.kubernetes.cri.sandbox-uid',
  imageName: 'io.kubernetes.cri.image-name',
  logPath: 'io.nodecri.log-path',
} as const;

/**
 * The process arguments, by kubelet's rules (moby's before it): a CRI command replaces the
 * image's Entrypoint and drops its Cmd; CRI args alone replace Cmd after the Entrypoint;
 * neither gives Entrypoint + Cmd. An Entrypoint of [""] counts as none (how `ENTRYPOINT
 * []` in a Dockerfile may be recorded).
 */
export function commandLine(command: readonly string[], args: readonly string[], image: Pick<ImageConfig, 'entrypoint' | 'cmd'>): string[] {
  let entry: string[] = [...command];
  let rest: string[] = [...args];
  if (command.length === 0) {
    const ep = image.entrypoint ?? [];
    entry = ep.length === 1 && ep[0] === '' ? [] : [...ep];
    if (args.length === 0) rest = [...(image.cmd ?? [])];
  }
  const argv = [...entry, ...rest];
  if (argv.length === 0) throw invalidArgument('no command specified: neither the container config nor the image gives one');
  return argv;
}

/**
 * The environment: PATH's default, HOSTNAME (the pod's), TERM=xterm for a tty, then the
 * image's Env, then the spec's (whose names the CRI layer checked), each later value
 * replacing an earlier one of the same name in place; HOME from the user's passwd entry (else "/") when nothing set it, as runc
 * does at exec.
 */
export function environment(opts: {
  hostname: string;
  tty: boolean;
  imageEnv: readonly string[];
  env: ReadonlyArray<{ key: string; value: string }>;
  home: string | null;
}): string[] {
  const env = new Map<string, string>();
  const set = (k: string, v: string) => env.set(k, v);
  set('PATH', DEFAULT_PATH_ENV);
  set('HOSTNAME', opts.hostname);
  if (opts.tty) set('TERM', 'xterm');
  for (const e of opts.imageEnv) {
    const eq = e.indexOf('=');
    if (eq <= 0) continue; // "KEY" alone or "=x": nothing an image may mean by it
    set(e.slice(0, eq), e.slice(eq + 1));
  }
  for (const kv of opts.env) set(kv.key, kv.value);
  if (!env.has('HOME')) set('HOME', opts.home && opts.home !== '' ? opts.home : '/');
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/** The spec's working dir (absolute, checked by the CRI layer), else the image's WorkingDir, else "/". */
export function workingDir(requested: string, image: string | null): string {
  if (requested !== '') return path.posix.normalize(requested);
  if (image) return path.posix.normalize(path.posix.isAbsolute(image) ? image : `/${image}`);
  return '/';
}

/**
 * Namespaces, by the spec's modes (the CRI's NamespaceOption) and what the sandbox pinned:
 * - network: NODE → the host's; otherwise the pod's pin (the host's when the pod is on the
 *   host network). CONTAINER and TARGET are not meaningful for the network and are read as
 *   POD, as containerd does.
 * - ipc: the same rule, with the pod's IPC pin.
 * - uts: the pod's pin, the host's when the pod is on the host network (kubelet has no
 *   container-level UTS option).
 * - pid: POD → the pod's shared PID namespace (an error when the pod has none); CONTAINER →
 *   a new one; NODE → the host's; TARGET → the target container's.
 * - mount: always new. cgroup: new only when configured (RuntimeDefaults.cgroupNamespace)
 *   and the container is unprivileged. user: none (pod user namespaces are refused by
 *   the sandbox for now). time: none.
 */
export function namespaces(opts: {
  modes: { network: NamespaceMode; pid: NamespaceMode; ipc: NamespaceMode; targetId: string };
  sandbox: Pick<SandboxRecord, 'id' | 'pins'>;
  podPidNamespace: string | null;
  targetPid: number | null;
  cgroupNamespace: boolean;
}): OciNamespace[] {
  const out: OciNamespace[] = [];
  const { modes, sandbox } = opts;
  switch (modes.pid) {
    case 'POD':
      // POD is the CRI's zero value, so a config that says nothing asks for it. A pod made
      // without a shared PID namespace has none to give: the container gets its own, as the
      // pod itself asked (kubelet always sends the pod's mode to both).
      out.push(opts.podPidNamespace === null ? { type: 'pid' } : { type: 'pid', path: opts.podPidNamespace });
      break;
    case 'CONTAINER':
      out.push({ type: 'pid' });
      break;
    case 'NODE':
      break;
    case 'TARGET':
      if (opts.targetPid === null) {
        throw failedPrecondition(`namespace_options.pid TARGET: target container ${JSON.stringify(modes.targetId)} has no running process`);
      }
      out.push({ type: 'pid', path: `/proc/${opts.targetPid}/ns/pid` });
      break;
  }
  if (modes.network !== 'NODE' && sandbox.pins.net) out.push({ type: 'network', path: sandbox.pins.net });
  if (modes.ipc !== 'NODE' && sandbox.pins.ipc) out.push({ type: 'ipc', path: sandbox.pins.ipc });
  if (sandbox.pins.uts) out.push({ type: 'uts', path: sandbox.pins.uts });
  out.push({ type: 'mount' });
  if (opts.cgroupNamespace) out.push({ type: 'cgroup' });
  return out;
}

/** The cgroup manager's Resources as runtime-spec linux.resources (set fields only). */
export function ociResources(r: Resources, devices: OciDeviceCgroup[]): OciResources {
  const out: OciResources = { devices };
  const cpu: NonNullable<OciResources['cpu']> = {};
  if (r.cpuShares !== null) cpu.shares = r.cpuShares;
  if (r.cpuQuota !== null) cpu.quota = r.cpuQuota;
  if (r.cpuPeriod !== null) cpu.period = r.cpuPeriod;
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems) cpu.mems = r.cpusetMems;
  if (Object.keys(cpu).length > 0) out.cpu = cpu;
  const memory: NonNullable<OciResources['memory']> = {};
  if (r.memoryLimitBytes !== null) memory.limit = Number(r.memoryLimitBytes);
  if (r.memorySwapLimitBytes !== null) memory.swap = Number(r.memorySwapLimitBytes);
  if (Object.keys(memory).length > 0) out.memory = memory;
  if (r.pidsLimit !== null) out.pids = { limit: r.pidsLimit };
  if (r.hugepageLimits.length > 0) out.hugepageLimits = r.hugepageLimits.map((h) => ({ pageSize: h.pageSize, limit: Number(h.limit) }));
  if (Object.keys(r.unified).length > 0) out.unified = { ...r.unified };
  return out;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export async function generateSpec(input: GenerateInput): Promise<GeneratedContainer> {
  const { spec: want, sandbox, defaults } = input;
  if (!ID_RE.test(input.containerId)) throw invalidArgument(`container id ${JSON.stringify(input.containerId)} is not valid`);
  if (!path.isAbsolute(input.rootfs)) throw invalidArgument(`rootfs ${JSON.stringify(input.rootfs)} must be an absolute path`);
  if (input.logPath !== null && !path.isAbsolute(input.logPath)) throw invalidArgument(`log path ${JSON.stringify(input.logPath)} must be absolute`);

  const privileged = want.privileged;
  if (privileged && !sandbox.spec.privileged) {
    throw invalidArgument(`security_context.privileged: sandbox ${sandbox.id} is not privileged, so its containers cannot be`);
  }
  const modes = want.namespaces;
  const img = input.imageConfig;

  // Process.
  const argv = commandLine(want.command, want.args, img);
  const user = await resolveUser({
    rootfs: input.rootfs,
    runAsUsername: want.user.runAsUsername,
    runAsUser: want.user.runAsUser,
    runAsGroup: want.user.runAsGroup,
    supplementalGroups: want.user.supplementalGroups,
    strictGroups: want.user.supplementalGroupsPolicy === 'Strict',
    imageUser: img.user,
  });
  const env = environment({ hostname: sandbox.hostname, tty: want.tty, imageEnv: img.env ?? [], env: want.env, home: user.home });
  const cwd = workingDir(want.workingDir, img.workingDir);
  const caps = computeCapabilities({
    defaults: defaults.capabilities,
    add: want.capabilities.add,
    drop: want.capabilities.drop,
    ambient: want.capabilities.ambient,
    privileged,
    uid: user.uid,
    capLastCap: defaults.capLastCap,
    hostCapabilities: defaults.hostCapabilities,
  });

  // Resources: the spec's, with the configured pids limit.
  const resources: Resources = { ...(want.resources ?? noResources()), pidsLimit: defaults.pidsLimit };
  const oomScoreAdj = want.oomScoreAdj;

  // Filesystem.
  let mountInfoText = input.mountInfo;
  const plan = await containerMounts({
    requested: want.mounts,
    sandbox,
    privileged,
    readonlyRootfs: want.readonlyRootfs,
    hostIpc: modes.ipc === 'NODE' || sandbox.pins.ipc === null,
    mountInfo: async () => (mountInfoText ??= await fsp.readFile('/proc/self/mountinfo', 'utf8')),
    imageVolumes: img.volumes ?? [],
    rootfsBytes: Buffer.byteLength(input.rootfs),
  });
  const devices = await containerDevices(want.devices, privileged);
  // The rules written to config.json are the ones the cgroup enforces.
  resources.devices = cgroupDeviceRules(devices.rules);

  // Security.
  const seccomp = await resolveSeccomp(want.seccomp, privileged, { arch: defaults.arch, capabilities: caps.bounding });
  // kubelet always sends its masks (empty lists only for ProcMount Unmasked, which it allows
  // only with a user namespace, which nodecri refuses); an empty list therefore means "not
  // given" (crictl: the CRI layer makes it null) and gets kubelet's defaults. containerd
  // would run such a container unmasked; CRI-O masks it. A privileged container gets no
  // masks (both peers).
  const masked = privileged ? [] : [...(want.maskedPaths ?? DEFAULT_MASKED_PATHS)];
  const readonly = privileged ? [] : [...(want.readonlyPaths ?? DEFAULT_READONLY_PATHS)];

  const ns = namespaces({
    modes,
    sandbox,
    podPidNamespace: input.podPidNamespace,
    targetPid: input.targetPid,
    cgroupNamespace: defaults.cgroupNamespace && !privileged,
  });

  const annotations: Record<string, string> = { ...want.annotations };
  annotations[ANNOTATIONS.containerType] = 'container';
  annotations[ANNOTATIONS.containerName] = want.name;
  annotations[ANNOTATIONS.sandboxId] = sandbox.id;
  annotations[ANNOTATIONS.sandboxName] = sandbox.spec.name;
  annotations[ANNOTATIONS.sandboxNamespace] = sandbox.spec.namespace;
  annotations[ANNOTATIONS.sandboxUid] = sandbox.spec.uid;
  annotations[ANNOTATIONS.imageName] = input.imageName;
  if (input.logPath !== null) annotations[ANNOTATIONS.logPath] = input.logPath;

  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: want.tty,
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      args: argv,
      env,
      cwd,
      capabilities: caps,
      rlimits: defaults.rlimits.map((r) => ({ ...r })),
      noNewPrivileges: want.noNewPrivileges,
      ...(oomScoreAdj === null ? {} : { oomScoreAdj }),
    },
    root: { path: input.rootfs, readonly: want.readonlyRootfs },
    // A hostname can only be set in a UTS namespace of the pod's own.
    ...(sandbox.pins.uts ? { hostname: sandbox.hostname } : {}),
    mounts: plan.mounts,
    linux: {
      namespaces: ns,
      devices: devices.devices,
      resources: ociResources(resources, devices.rules),
      cgroupsPath: path.posix.join(sandbox.cgroup.path, `nodecri-${input.containerId}`),
      // Pod sysctls are applied to the pod's pinned namespaces when the sandbox is made;
      // the CRI container config has none of its own.
      sysctl: {},
      ...(seccomp ? { seccomp } : {}),
      maskedPaths: masked,
      readonlyPaths: readonly,
      rootfsPropagation: plan.rootfsPropagation,
    },
    annotations,
  };

  return {
    spec,
    stopSignal: stopSignal(want.stopSignal, img.stopSignal),
    user,
    resources,
    stdin: want.stdin,
    stdinOnce: want.stdinOnce,
    tty: want.tty,
    uncoveredVolumes: plan.uncoveredVolumes,
  };
}
