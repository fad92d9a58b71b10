/**
 * A pod sandbox as the domain sees it: the resolved spec it was asked for (validated and
 * converted from the CRI config by the CRI layer) and the record of what was made for it,
 * persisted as JSON so that a restarted daemon knows every sandbox and how to undo it.
 */
import type { Resources } from '../linux/cgroups';

export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';

export interface PortMapping {
  protocol: 'TCP' | 'UDP' | 'SCTP';
  containerPort: number;
  hostPort: number;
  hostIp: string;
}

export interface SandboxSpec {
  name: string;
  namespace: string;
  uid: string;
  attempt: number;
  hostname: string;
  logDirectory: string;
  dns: { servers: string[]; searches: string[]; options: string[] } | null;
  portMappings: PortMapping[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** "" when kubelet sent none: the configured default parent is used */
  cgroupParent: string;
  sysctls: Record<string, string>;
  namespaces: { network: NamespaceMode; pid: NamespaceMode; ipc: NamespaceMode; targetId: string; userns: NamespaceMode };
  /** pod overhead plus pod resources, applied to the pod cgroup */
  resources: Resources | null;
  /** "" means the default runtime */
  runtimeHandler: string;
  /** bytes of the pod's /dev/shm */
  shmSizeBytes: bigint;
  privileged: boolean;
}

export type SandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';

export interface SandboxRecord {
  version: 1;
  id: string;
  name: string;
  spec: SandboxSpec;
  /** the runtime handler actually used (the default resolved) */
  runtimeHandler: string;
  state: SandboxState;
  /** nanoseconds since the epoch */
  createdAt: string;
  /** <runroot>/sandboxes/<id>: pins, shm, hostname/hosts/resolv.conf */
  runDir: string;
  pins: { net: string | null; ipc: string | null; uts: string | null; user: string | null };
  /** the pod's /dev/shm: a tmpfs we mounted, or the host's for host IPC */
  shm: { path: string; mounted: boolean };
  files: { hostname: string; resolvConf: string; hosts: string };
  hostname: string;
  /**
   * the pod cgroup; `created` says it is the pod's own (under cgroup.default_parent), made
   * and removed with it. kubelet's cgroup_parent is never the pod's own: other pods may
   * live under it. (Records from before then said `created` for a cgroup_parent nodecri
   * had to make; see SandboxService.remove.)
   */
  cgroup: { path: string; created: boolean };
  /** hostVeth: the host end of the pod's veth, whose counters give the pod's traffic */
  network: { name: string; ifName: string; ips: string[]; hostVeth: string | null } | null;
  /**
   * the pause process of a pod that shares one PID namespace, else null; startTime (from
   * /proc/<pid>/stat) tells the pause from a later process that got the same pid
   */
  infra: { pid: number; startTime: string | null; cgroupPath: string } | null;
  /** why it is not ready, when it is not */
  notReadyReason: string;
}
