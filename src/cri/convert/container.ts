/**
 * ContainerConfig (CRI) to the domain's ContainerSpec, with the input checks that need
 * nothing but the config and name the CRI field at fault; and container records back to
 * the CRI's status, list and stats messages. Checks that need the image, the rootfs or
 * the host (users, device nodes, host paths, seccomp profiles) are oci/generate.ts's.
 *
 * Not carried into the spec, as before it existed: apparmor and apparmor_profile, and
 * selinux_options (nodecri runs without an LSM of its own), CDI_devices, windows.
 */
import path from 'node:path';
import { invalidArgument, unimplemented } from '../../domain/errors';
import { checkPathLength } from '../../domain/limits';
import type { ContainerRecord } from '../../container/model';
import type { ContainerMount, ContainerSpec, SeccompChoice, StopSignal } from '../../container/spec';
import type { Resources } from '../../linux/cgroups';
import { parseSignal } from '../../oci/signals';
import type { OciSpec } from '../../oci/types';
import { criId } from '../../oci/user';
import type { NamespaceMode } from '../../sandbox/model';
import type { ContainerConfig__Output } from '../generated/runtime/v1/ContainerConfig';
import type { ContainerStatus } from '../generated/runtime/v1/ContainerStatus';
import type { Container } from '../generated/runtime/v1/Container';
import type { ContainerAttributes } from '../generated/runtime/v1/ContainerAttributes';
import type { ContainerMetadata } from '../generated/runtime/v1/ContainerMetadata';
import type { Device__Output } from '../generated/runtime/v1/Device';
import type { ImageSpec } from '../generated/runtime/v1/ImageSpec';
import type { LinuxContainerResources } from '../generated/runtime/v1/LinuxContainerResources';
import type { LinuxContainerSecurityContext__Output } from '../generated/runtime/v1/LinuxContainerSecurityContext';
import type { Mount, Mount__Output } from '../generated/runtime/v1/Mount';
import { resourcesFromCri } from './resources';

const modeOf = (m: string | undefined): NamespaceMode => (m as NamespaceMode | undefined) ?? 'POD';

const LOCALHOST_REF = 'linux.security_context.seccomp.localhost_ref';
const PROFILE_PATH = 'linux.security_context.seccomp_profile_path';

function localhostPath(p: string, field: string): SeccompChoice {
  if (!path.isAbsolute(p)) throw invalidArgument(`${field}: seccomp profile path ${JSON.stringify(p)} must be absolute`);
  return { kind: 'localhost', path: path.normalize(p), field };
}

/**
 * Which seccomp filter the security context asks for (see oci/seccomp.ts for what each
 * gives): the `seccomp` message when present, else the deprecated seccomp_profile_path,
 * else none. Malformed references are invalid arguments.
 */
export function seccompChoice(sc: Pick<LinuxContainerSecurityContext__Output, 'seccomp' | 'seccomp_profile_path'> | null): SeccompChoice {
  if (!sc) return { kind: 'unconfined' };
  const sp = sc.seccomp;
  if (sp) {
    if (sp.profile_type !== 'Localhost' && sp.localhost_ref !== '') {
      throw invalidArgument(`seccomp: localhost_ref must only be set for profile_type Localhost, got ${sp.profile_type}`);
    }
    switch (sp.profile_type) {
      case 'RuntimeDefault':
        return { kind: 'runtime-default' };
      case 'Unconfined':
        return { kind: 'unconfined' };
      case 'Localhost':
        if (sp.localhost_ref === '') throw invalidArgument('seccomp: profile_type Localhost needs a localhost_ref');
        return localhostPath(sp.localhost_ref, LOCALHOST_REF);
    }
  }
  const p = sc.seccomp_profile_path;
  if (p === '' || p === 'unconfined') return { kind: 'unconfined' };
  if (p === 'runtime/default' || p === 'docker/default') return { kind: 'runtime-default' };
  if (p.startsWith('localhost/')) return localhostPath(p.slice('localhost/'.length), PROFILE_PATH);
  throw invalidArgument(`seccomp_profile_path: unknown profile ${JSON.stringify(p)}`);
}

/**
 * The stop_signal enum (the ContainerStopSignals feature): null for RUNTIME_DEFAULT (the
 * image's, else SIGTERM). The enum spells SIGRTMIN+n as SIGRTMINPLUSn and SIGRTMAX-n as
 * SIGRTMAXMINUSn.
 */
export function stopSignalFromCri(criSignal: string): StopSignal | null {
  if (criSignal === '' || criSignal === 'RUNTIME_DEFAULT') return null;
  const s = parseSignal(criSignal.replace('PLUS', '+').replace('MINUS', '-'));
  if (!s) throw invalidArgument(`stop_signal: ${JSON.stringify(criSignal)} is not a known signal`);
  return s;
}

function mountFromCri(m: Mount__Output, field: string): ContainerMount {
  if (m.image && m.image.image !== '') throw unimplemented(`${field}: image volume mounts are not supported`);
  if (m.uidMappings.length > 0 || m.gidMappings.length > 0) throw unimplemented(`${field}: id-mapped mounts are not supported`);
  if (!path.posix.isAbsolute(m.container_path)) {
    throw invalidArgument(`${field}: container_path ${JSON.stringify(m.container_path)} must be an absolute path`);
  }
  if (!path.posix.isAbsolute(m.host_path)) throw invalidArgument(`${field}: host_path ${JSON.stringify(m.host_path)} must be an absolute path`);
  if (m.recursive_read_only) {
    if (!m.readonly) throw invalidArgument(`${field}: recursive_read_only needs readonly`);
    if (m.propagation !== 'PROPAGATION_PRIVATE') throw invalidArgument(`${field}: recursive_read_only needs PROPAGATION_PRIVATE, got ${m.propagation}`);
  }
  return {
    containerPath: m.container_path,
    hostPath: m.host_path,
    readonly: m.readonly,
    recursiveReadOnly: m.recursive_read_only,
    propagation: m.propagation,
    selinuxRelabel: m.selinux_relabel,
  };
}

function deviceFromCri(d: Device__Output, field: string): ContainerSpec['devices'][number] {
  if (!path.posix.isAbsolute(d.host_path)) throw invalidArgument(`${field}: host_path ${JSON.stringify(d.host_path)} must be an absolute path`);
  const containerPath = d.container_path === '' ? d.host_path : d.container_path;
  if (!path.posix.isAbsolute(containerPath)) {
    throw invalidArgument(`${field}: container_path ${JSON.stringify(d.container_path)} must be an absolute path`);
  }
  const permissions = d.permissions === '' ? 'rwm' : d.permissions;
  if (!/^[rwm]{1,3}$/.test(permissions) || new Set(permissions).size !== permissions.length) {
    throw invalidArgument(`${field}: permissions ${JSON.stringify(d.permissions)} must be a combination of r, w and m`);
  }
  return { hostPath: d.host_path, containerPath, permissions };
}

export function containerSpecFromCri(config: ContainerConfig__Output | null): ContainerSpec {
  if (!config) throw invalidArgument('config is missing');
  if (!config.metadata || config.metadata.name === '') throw invalidArgument('config.metadata.name is empty');
  if (!config.image || config.image.image === '') throw invalidArgument('config.image.image is empty');
  const sc = config.linux?.security_context ?? null;
  const ns = sc?.namespace_options ?? null;

  const user: ContainerSpec['user'] = {
    runAsUsername: sc?.run_as_username ?? '',
    runAsUser: sc?.run_as_user ? criId(sc.run_as_user.value, 'run_as_user') : null,
    runAsGroup: sc?.run_as_group ? criId(sc.run_as_group.value, 'run_as_group') : null,
    supplementalGroups: (sc?.supplemental_groups ?? []).map((g, i) => criId(g, `supplemental_groups[${i}]`)),
    supplementalGroupsPolicy: sc?.supplemental_groups_policy === 'Strict' ? 'Strict' : 'Merge',
  };
  const env = config.envs.map((kv, i) => {
    if (kv.key === '' || kv.key.includes('=')) throw invalidArgument(`envs[${i}]: invalid name ${JSON.stringify(kv.key)}`);
    const value = kv.value as Buffer | string;
    return { key: kv.key, value: typeof value === 'string' ? value : value.toString('utf8') };
  });
  let workingDir = '';
  if (config.working_dir !== '') {
    if (!path.posix.isAbsolute(config.working_dir)) throw invalidArgument(`working_dir ${JSON.stringify(config.working_dir)} must be an absolute path`);
    checkPathLength('working_dir', config.working_dir);
    workingDir = path.posix.normalize(config.working_dir);
  }

  const criResources = config.linux?.resources ?? null;
  let oomScoreAdj: number | null = null;
  if (criResources) {
    oomScoreAdj = Number(criResources.oom_score_adj);
    if (!Number.isInteger(oomScoreAdj) || oomScoreAdj < -1000 || oomScoreAdj > 1000) {
      throw invalidArgument(`resources.oom_score_adj ${criResources.oom_score_adj} is outside -1000..1000`);
    }
  }
  const mounts = config.mounts.map((m, i) => mountFromCri(m, `mounts[${i}]`));
  const devices = config.devices.map((d, i) => deviceFromCri(d, `devices[${i}]`));
  const seccomp = seccompChoice(sc);
  const stopSignal = stopSignalFromCri(config.stop_signal);

  return {
    name: config.metadata.name,
    attempt: config.metadata.attempt,
    image: {
      image: config.image.image,
      annotations: { ...config.image.annotations },
      userSpecifiedImage: config.image.user_specified_image,
      runtimeHandler: config.image.runtime_handler,
      imageRef: config.image.image_ref,
    },
    command: [...config.command],
    args: [...config.args],
    workingDir,
    env,
    mounts,
    devices,
    labels: { ...config.labels },
    annotations: { ...config.annotations },
    logPath: config.log_path,
    stdin: config.stdin,
    stdinOnce: config.stdin_once,
    tty: config.tty,
    stopSignal,
    resources: resourcesFromCri(criResources),
    oomScoreAdj,
    privileged: sc?.privileged ?? false,
    namespaces: { network: modeOf(ns?.network), pid: modeOf(ns?.pid), ipc: modeOf(ns?.ipc), targetId: ns?.target_id ?? '' },
    user,
    capabilities: {
      add: [...(sc?.capabilities?.add_capabilities ?? [])],
      drop: [...(sc?.capabilities?.drop_capabilities ?? [])],
      ambient: [...(sc?.capabilities?.add_ambient_capabilities ?? [])],
    },
    readonlyRootfs: sc?.readonly_rootfs ?? false,
    noNewPrivileges: sc?.no_new_privs ?? false,
    // An empty list is "not given" (see oci/generate.ts for why).
    maskedPaths: sc && sc.masked_paths.length > 0 ? [...sc.masked_paths] : null,
    readonlyPaths: sc && sc.readonly_paths.length > 0 ? [...sc.readonly_paths] : null,
    seccomp,
  };
}

function resourcesToCri(r: Resources | null): LinuxContainerResources | null {
  if (!r) return null;
  const s = (v: number | bigint | null) => (v === null ? '0' : v.toString());
  return {
    cpu_period: s(r.cpuPeriod),
    cpu_quota: s(r.cpuQuota),
    cpu_shares: s(r.cpuShares),
    memory_limit_in_bytes: s(r.memoryLimitBytes),
    memory_swap_limit_in_bytes: s(r.memorySwapLimitBytes),
    cpuset_cpus: r.cpusetCpus ?? '',
    cpuset_mems: r.cpusetMems ?? '',
    hugepage_limits: r.hugepageLimits.map((h) => ({ page_size: h.pageSize, limit: h.limit.toString() })),
    unified: r.unified,
  };
}

function metadataToCri(spec: ContainerSpec): ContainerMetadata {
  return { name: spec.name, attempt: spec.attempt };
}

function imageToCri(spec: ContainerSpec): ImageSpec {
  const i = spec.image;
  return { image: i.image, annotations: i.annotations, user_specified_image: i.userSpecifiedImage, runtime_handler: i.runtimeHandler, image_ref: i.imageRef };
}

/** The mounts as kubelet sent them (image and id-mapped mounts never make a container). */
function mountToCri(m: ContainerMount): Mount {
  return {
    container_path: m.containerPath,
    host_path: m.hostPath,
    readonly: m.readonly,
    selinux_relabel: m.selinuxRelabel,
    propagation: m.propagation,
    uidMappings: [],
    gidMappings: [],
    recursive_read_only: m.recursiveReadOnly,
    image: null,
    image_sub_path: '',
  };
}

export function containerStatusToCri(r: ContainerRecord, oci: OciSpec | null): ContainerStatus {
  return {
    id: r.id,
    metadata: metadataToCri(r.spec),
    state: r.state,
    created_at: r.createdAt,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    exit_code: r.exitCode,
    image: imageToCri(r.spec),
    image_ref: r.image.ref,
    image_id: r.image.id,
    reason: r.reason,
    message: r.message,
    labels: r.spec.labels,
    annotations: r.spec.annotations,
    mounts: r.spec.mounts.map(mountToCri),
    log_path: r.logPath,
    resources: { linux: resourcesToCri(r.resources) },
    user: oci
      ? {
          linux: {
            uid: String(oci.process.user.uid),
            gid: String(oci.process.user.gid),
            supplemental_groups: oci.process.user.additionalGids.map(String),
          },
        }
      : null,
  };
}

export function containerListItem(r: ContainerRecord): Container {
  return {
    id: r.id,
    pod_sandbox_id: r.sandboxId,
    metadata: metadataToCri(r.spec),
    image: imageToCri(r.spec),
    image_ref: r.image.ref,
    image_id: r.image.id,
    state: r.state,
    created_at: r.createdAt,
    labels: r.spec.labels,
    annotations: r.spec.annotations,
  };
}

/** The attributes of a container's stats. */
export function containerAttributes(r: ContainerRecord): ContainerAttributes {
  return { id: r.id, metadata: metadataToCri(r.spec), labels: r.spec.labels, annotations: r.spec.annotations };
}
