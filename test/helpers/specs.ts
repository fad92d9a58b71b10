/**
 * Fixtures of the domain's own types for the unit tests of the translation chain and the
 * services: a container spec that asks for nothing special (what the CRI layer makes of a
 * bare config) and a ready pod's record, each with the overrides a test needs.
 */
import type { ContainerSpec } from '../../src/container/spec';
import type { SandboxRecord, SandboxSpec } from '../../src/sandbox/model';

export function bareContainerSpec(over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    name: 'app',
    attempt: 0,
    image: { image: 'busybox', annotations: {}, userSpecifiedImage: '', runtimeHandler: '', imageRef: '' },
    command: [],
    args: [],
    workingDir: '',
    env: [],
    mounts: [],
    devices: [],
    labels: {},
    annotations: {},
    logPath: 'app/0.log',
    stdin: false,
    stdinOnce: false,
    tty: false,
    stopSignal: null,
    resources: null,
    oomScoreAdj: null,
    privileged: false,
    namespaces: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', targetId: '' },
    user: { runAsUsername: '', runAsUser: null, runAsGroup: null, supplementalGroups: [], supplementalGroupsPolicy: 'Merge' },
    capabilities: { add: [], drop: [], ambient: [] },
    readonlyRootfs: false,
    noNewPrivileges: false,
    maskedPaths: null,
    readonlyPaths: null,
    seccomp: { kind: 'unconfined' },
    ...over,
  };
}

/** A READY pod "default/web" whose run dir is `run` (pins, shm and files named under it). */
export function readySandboxRecord(run: string, over: { spec?: Partial<SandboxSpec>; record?: Partial<SandboxRecord> } = {}): SandboxRecord {
  return {
    version: 1,
    id: 'sb0123456789',
    name: 'k8s_POD_web_default_uid1_0',
    spec: {
      name: 'web',
      namespace: 'default',
      uid: 'uid1',
      attempt: 0,
      hostname: 'web-0',
      logDirectory: '/var/log/pods/default_web_uid1',
      dns: null,
      portMappings: [],
      labels: {},
      annotations: {},
      cgroupParent: '/kubepods/poduid1',
      sysctls: {},
      namespaces: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', targetId: '', userns: 'NODE' },
      resources: null,
      runtimeHandler: '',
      shmSizeBytes: 64n << 20n,
      privileged: false,
      ...over.spec,
    },
    runtimeHandler: 'native',
    state: 'SANDBOX_READY',
    createdAt: '0',
    runDir: run,
    pins: { net: `${run}/ns/net`, ipc: `${run}/ns/ipc`, uts: `${run}/ns/uts`, user: null },
    shm: { path: `${run}/shm`, mounted: true },
    files: { hostname: `${run}/hostname`, resolvConf: `${run}/resolv.conf`, hosts: `${run}/hosts` },
    hostname: 'web-0',
    cgroup: { path: '/kubepods/poduid1', created: true },
    network: null,
    infra: null,
    notReadyReason: '',
    ...over.record,
  };
}
