/**
 * A container as the domain is asked for it: the CRI ContainerConfig validated and
 * converted by the CRI layer (src/cri/convert/container.ts), as SandboxSpec is for a pod.
 * Everything the domain reads of a request is here, in its own names; what needs the
 * image, the rootfs or the host (the user's passwd entry, a device's numbers, a mount's
 * real path, the seccomp profile's text) is resolved later, by oci/generate.ts, which turns
 * this into the OCI spec saved as config.json. Persisted in the container's record, so a
 * status reads it back.
 */
import type { Resources } from '../linux/cgroups';
import type { SeccompChoice } from '../oci/seccomp';
import type { StopSignal } from '../oci/signals';
import type { NamespaceMode } from '../sandbox/model';

export type { SeccompChoice, StopSignal };

/** How a bind mount propagates (the CRI's MountPropagation names). */
export type MountPropagation = 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL';

export interface ContainerMount {
  /** absolute */
  containerPath: string;
  /** absolute; resolved (symlinks) and checked when the spec is generated */
  hostPath: string;
  readonly: boolean;
  /** needs readonly and PROPAGATION_PRIVATE (checked by the CRI layer) */
  recursiveReadOnly: boolean;
  propagation: MountPropagation;
  /** asked for, but ignored: nodecri runs without SELinux (kept for the status) */
  selinuxRelabel: boolean;
}

export interface ContainerDevice {
  /** absolute: a device node, or a directory standing for every device under it */
  hostPath: string;
  /** absolute: where it appears in the container (the host path when none was given) */
  containerPath: string;
  /** a non-empty combination of r, w and m */
  permissions: string;
}

export interface ContainerSpec {
  /** metadata.name, never empty */
  name: string;
  attempt: number;
  /** the image as kubelet named it; `image` is never empty */
  image: { image: string; annotations: Record<string, string>; userSpecifiedImage: string; runtimeHandler: string; imageRef: string };
  /** replaces the image's Entrypoint (and drops its Cmd) when not empty */
  command: string[];
  args: string[];
  /** absolute and normalized, or "" for the image's WorkingDir */
  workingDir: string;
  /** in order; names are valid (not empty, no "=") */
  env: { key: string; value: string }[];
  mounts: ContainerMount[];
  devices: ContainerDevice[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** relative to the pod's log directory (resolved by the service); "" for no log */
  logPath: string;
  stdin: boolean;
  stdinOnce: boolean;
  tty: boolean;
  /** the stop signal asked for; null: the image's StopSignal, else SIGTERM */
  stopSignal: StopSignal | null;
  /** the container's cgroup resources; null when none were given */
  resources: Resources | null;
  /** -1000..1000; null when the config had no resources (then it is inherited) */
  oomScoreAdj: number | null;
  privileged: boolean;
  namespaces: { network: NamespaceMode; pid: NamespaceMode; ipc: NamespaceMode; targetId: string };
  /** who the process runs as; resolved against the image's passwd and group files */
  user: {
    /** "" for none; takes precedence over runAsUser */
    runAsUsername: string;
    runAsUser: number | null;
    runAsGroup: number | null;
    supplementalGroups: number[];
    /** Strict: no groups from the image's /etc/group */
    supplementalGroupsPolicy: 'Merge' | 'Strict';
  };
  /** changes to the runtime's default set (CAP_ names or bare) */
  capabilities: { add: string[]; drop: string[]; ambient: string[] };
  readonlyRootfs: boolean;
  noNewPrivileges: boolean;
  /** null: not given, the runtime's defaults apply (see oci/generate.ts) */
  maskedPaths: string[] | null;
  readonlyPaths: string[] | null;
  seccomp: SeccompChoice;
}
