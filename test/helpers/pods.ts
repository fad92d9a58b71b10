/** CRI request shapes for tests, as kubelet would send them. */
import { randomBytes } from 'node:crypto';

export interface PodOptions {
  name?: string;
  namespace?: string;
  uid?: string;
  attempt?: number;
  hostNetwork?: boolean;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  logDirectory?: string;
  cgroupParent?: string;
  sysctls?: Record<string, string>;
  hostname?: string;
  pid?: 'POD' | 'CONTAINER' | 'NODE';
}

export function podConfig(o: PodOptions = {}) {
  const uid = o.uid ?? randomBytes(8).toString('hex');
  return {
    metadata: { name: o.name ?? `pod-${uid.slice(0, 6)}`, namespace: o.namespace ?? 'default', uid, attempt: o.attempt ?? 0 },
    hostname: o.hostname ?? '',
    log_directory: o.logDirectory ?? `/var/log/pods/default_pod_${uid}`,
    labels: o.labels ?? {},
    annotations: o.annotations ?? {},
    linux: {
      cgroup_parent: o.cgroupParent ?? '',
      sysctls: o.sysctls ?? {},
      security_context: {
        namespace_options: { network: o.hostNetwork ? 'NODE' : 'POD', pid: o.pid ?? 'CONTAINER', ipc: 'POD' },
      },
    },
  } as const;
}
