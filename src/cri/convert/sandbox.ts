/**
 * PodSandboxConfig (CRI) to the domain's SandboxSpec, with the input checks that name the
 * CRI field at fault; and sandbox records back to CRI status and list items.
 */
import path from 'node:path';
import { invalidArgument } from '../../domain/errors';
import { parseQuantity } from '../../domain/quantity';
import type { NamespaceMode, SandboxRecord, SandboxSpec } from '../../sandbox/model';
import type { PodSandboxConfig__Output } from '../generated/runtime/v1/PodSandboxConfig';
import type { PodSandboxStatus } from '../generated/runtime/v1/PodSandboxStatus';
import type { PodSandbox } from '../generated/runtime/v1/PodSandbox';
import { podResources, resourcesFromCri } from './resources';

/** The annotation CRI-O reads the shm size from; kubelet passes pod annotations through. */
export const shmSizeAnnotation = 'io.kubernetes.cri-o.ShmSize';
const defaultShmBytes = 64n * 1024n * 1024n;

function mode(m: string | undefined): NamespaceMode {
  return m === 'CONTAINER' || m === 'NODE' || m === 'TARGET' ? m : 'POD';
}

export function sandboxSpecFromCri(config: PodSandboxConfig__Output | null, runtimeHandler: string): SandboxSpec {
  if (!config) throw invalidArgument('config is missing');
  const meta = config.metadata;
  if (!meta) throw invalidArgument('config.metadata is missing');
  for (const field of ['name', 'namespace', 'uid'] as const) {
    if (!meta[field]) throw invalidArgument(`config.metadata.${field} is empty`);
  }
  if (config.log_directory !== '' && !path.isAbsolute(config.log_directory)) {
    throw invalidArgument(`config.log_directory ${JSON.stringify(config.log_directory)} is not an absolute path`);
  }
  for (const [i, p] of config.port_mappings.entries()) {
    if (p.container_port < 1 || p.container_port > 65535) throw invalidArgument(`config.port_mappings[${i}].container_port ${p.container_port} is out of range`);
    if (p.host_port < 0 || p.host_port > 65535) throw invalidArgument(`config.port_mappings[${i}].host_port ${p.host_port} is out of range`);
  }
  let shmSizeBytes = defaultShmBytes;
  const shmAnnotation = config.annotations[shmSizeAnnotation];
  if (shmAnnotation !== undefined) {
    try {
      shmSizeBytes = parseQuantity(shmAnnotation);
    } catch {
      throw invalidArgument(`annotation ${shmSizeAnnotation}: invalid quantity ${JSON.stringify(shmAnnotation)}`);
    }
    if (shmSizeBytes <= 0n) throw invalidArgument(`annotation ${shmSizeAnnotation}: size must be positive`);
  }
  const sc = config.linux?.security_context ?? null;
  const ns = sc?.namespace_options ?? null;
  const userns = ns?.userns_options?.mode;
  // A pod on the host's network is in the host's UTS namespace too (kubelet sends no
  // hostname for one): a hostname of its own could only be the node's, renamed. containerd
  // refuses it as well (runc: "unable to set hostname without a private UTS namespace").
  if (ns?.network === 'NODE' && config.hostname !== '') {
    throw invalidArgument(
      `config.hostname ${JSON.stringify(config.hostname)} is set for a pod on the host network (config.linux.security_context.namespace_options.network NODE), which shares the node's UTS namespace and so has no hostname of its own`,
    );
  }
  return {
    name: meta.name,
    namespace: meta.namespace,
    uid: meta.uid,
    attempt: meta.attempt,
    hostname: config.hostname,
    logDirectory: config.log_directory,
    dns: config.dns_config ? { servers: config.dns_config.servers, searches: config.dns_config.searches, options: config.dns_config.options } : null,
    portMappings: config.port_mappings.map((p) => ({
      protocol: (p.protocol as 'TCP' | 'UDP' | 'SCTP') || 'TCP',
      containerPort: p.container_port,
      hostPort: p.host_port,
      hostIp: p.host_ip,
    })),
    labels: { ...config.labels },
    annotations: { ...config.annotations },
    cgroupParent: config.linux?.cgroup_parent ?? '',
    sysctls: { ...(config.linux?.sysctls ?? {}) },
    namespaces: {
      network: mode(ns?.network),
      pid: mode(ns?.pid),
      ipc: mode(ns?.ipc),
      targetId: ns?.target_id ?? '',
      // Without userns options the pod runs in the host's user namespace.
      userns: userns === undefined ? 'NODE' : mode(userns),
    },
    resources: podResources(resourcesFromCri(config.linux?.overhead ?? null), resourcesFromCri(config.linux?.resources ?? null)),
    runtimeHandler,
    shmSizeBytes,
    privileged: sc?.privileged ?? false,
  };
}

export function sandboxStatusToCri(r: SandboxRecord): PodSandboxStatus {
  const [ip = '', ...more] = r.state === 'SANDBOX_READY' ? (r.network?.ips ?? []) : [];
  return {
    id: r.id,
    metadata: { name: r.spec.name, namespace: r.spec.namespace, uid: r.spec.uid, attempt: r.spec.attempt },
    state: r.state,
    created_at: r.createdAt,
    network: { ip, additional_ips: more.map((x) => ({ ip: x })) },
    linux: {
      namespaces: {
        options: {
          network: r.spec.namespaces.network,
          pid: r.spec.namespaces.pid,
          ipc: r.spec.namespaces.ipc,
          target_id: r.spec.namespaces.targetId,
          userns_options: r.spec.namespaces.userns === 'POD' ? { mode: 'POD' } : null,
        },
      },
    },
    labels: r.spec.labels,
    annotations: r.spec.annotations,
    // As it was asked for ("" for the default), as containerd reports it in the status and
    // the list: a client compares it with what it sent. The resolved name is in the
    // verbose info.
    runtime_handler: r.spec.runtimeHandler,
  };
}

export function sandboxListItem(r: SandboxRecord): PodSandbox {
  return {
    id: r.id,
    metadata: { name: r.spec.name, namespace: r.spec.namespace, uid: r.spec.uid, attempt: r.spec.attempt },
    state: r.state,
    created_at: r.createdAt,
    labels: r.spec.labels,
    annotations: r.spec.annotations,
    runtime_handler: r.spec.runtimeHandler,
  };
}

/** Verbose info for PodSandboxStatus: what an operator debugging a pod wants to see. */
export function sandboxInfo(r: SandboxRecord): Record<string, string> {
  return {
    info: JSON.stringify({
      pins: r.pins,
      shm: r.shm,
      cgroup: r.cgroup,
      runDir: r.runDir,
      files: r.files,
      network: r.network,
      infra: r.infra,
      runtimeHandler: r.runtimeHandler,
      notReadyReason: r.notReadyReason,
      spec: { ...r.spec, shmSizeBytes: r.spec.shmSizeBytes.toString(), resources: r.spec.resources ? 'set' : null },
    }),
  };
}
