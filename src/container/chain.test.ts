/**
 * The translation chain end to end, for a container spec with every field set: container
 * spec -> OCI spec (oci/generate.ts, saved as config.json) -> the addon's process plan
 * (process-plan.ts) and the cgroup's resources. Each field of ContainerSpec (and of its
 * parts) has an entry in a table saying where it must arrive; the tables are typed over
 * every key, so a field added to the spec without an entry here does not compile, and
 * the fixture is Required<> so it cannot leave one out. Needs no root: the rootfs, host
 * dirs and seccomp profile are files under a temp dir, the devices are /dev/null and
 * /dev/zero.
 */
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { containerName } from '../domain/ids';
import type { Resources } from '../linux/cgroups';
import type { ProcessSpec } from '../native/process';
import { DEFAULT_MASKED_PATHS, defaultRuntimeDefaults, generateSpec, type GeneratedContainer, type GenerateInput } from '../oci/generate';
import { DEV_SYMLINKS, defaultDeviceNodes } from '../oci/devices';
import type { SandboxRecord } from '../sandbox/model';
import { containerProcessSpec, deviceSpecs } from './process-plan';
import type { ContainerDevice, ContainerMount, ContainerSpec } from './spec';
import { readySandboxRecord } from '../../test/helpers/specs';

let dir: string;
let hostData: string;
let hostShared: string;
let profile: string;
let sandbox: SandboxRecord;

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodecri-chain-'));
  await fsp.mkdir(path.join(dir, 'rootfs/etc'), { recursive: true });
  await fsp.writeFile(path.join(dir, 'rootfs/etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
  await fsp.writeFile(path.join(dir, 'rootfs/etc/group'), 'root:x:0:\nwheel:x:10:app\napp:x:1000:\n');
  hostData = path.join(dir, 'host/data');
  hostShared = path.join(dir, 'host/shared');
  await fsp.mkdir(hostData, { recursive: true });
  await fsp.mkdir(hostShared, { recursive: true });
  await fsp.symlink(hostData, path.join(dir, 'host/link'));
  profile = path.join(dir, 'profile.json');
  await fsp.writeFile(
    profile,
    JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' }] }),
  );
  const run = path.join(dir, 'sandbox');
  sandbox = readySandboxRecord(run, {
    spec: { namespaces: { network: 'POD', pid: 'POD', ipc: 'POD', targetId: '', userns: 'NODE' }, privileged: true },
    record: { infra: { pid: 42, startTime: '1', cgroupPath: '/kubepods/poduid1/nodecri-infra-x' } },
  });
});
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

const privateMount: Required<ContainerMount> = {
  containerPath: '/data/',
  hostPath: '', // set in full(): the temp dir's symlink to host/data
  readonly: true,
  recursiveReadOnly: true,
  propagation: 'PROPAGATION_PRIVATE',
  selinuxRelabel: true,
};

const device: Required<ContainerDevice> = { hostPath: '/dev/zero', containerPath: '/dev/xzero', permissions: 'rw' };

const resources: Required<Resources> = {
  cpuShares: 512,
  cpuQuota: 50000,
  cpuPeriod: 100000,
  cpusetCpus: '0-1',
  cpusetMems: '0',
  memoryLimitBytes: 64n << 20n,
  memorySwapLimitBytes: 128n << 20n,
  pidsLimit: 99, // the CRI has none: the runtime's configured pids limit replaces it
  hugepageLimits: [{ pageSize: '2MB', limit: 4n << 20n }],
  unified: { 'memory.high': '33554432' },
  devices: null, // the CRI has none: the spec's device rules replace it
};

/** Every field set, each to something other than what a bare config gives. */
function full(): Required<ContainerSpec> {
  return {
    name: 'app-full',
    attempt: 3,
    image: { image: 'busybox:1', annotations: { 'a.b/c': 'd' }, userSpecifiedImage: 'busybox', runtimeHandler: 'rh', imageRef: 'sha256:abc' },
    command: ['/bin/app'],
    args: ['--flag', 'x'],
    workingDir: '/work',
    env: [
      { key: 'LANG', value: 'C.UTF-8' },
      { key: 'EMPTY', value: '' },
    ],
    mounts: [
      { ...privateMount, hostPath: path.join(dir, 'host/link') },
      { containerPath: '/shared', hostPath: hostShared, readonly: false, recursiveReadOnly: false, propagation: 'PROPAGATION_BIDIRECTIONAL', selinuxRelabel: false },
    ],
    devices: [device],
    labels: { tier: 'web' },
    annotations: { 'example.com/k': 'v' },
    logPath: 'app/0.log',
    stdin: true,
    stdinOnce: true,
    tty: true,
    stopSignal: { name: 'SIGQUIT', number: 3 },
    resources: { ...resources },
    oomScoreAdj: 321,
    privileged: false,
    namespaces: { network: 'NODE', pid: 'TARGET', ipc: 'NODE', targetId: 'target0' },
    user: { runAsUsername: 'app', runAsUser: 1000, runAsGroup: 55, supplementalGroups: [7], supplementalGroupsPolicy: 'Strict' },
    capabilities: { add: ['NET_RAW', 'SYS_TIME'], drop: ['KILL'], ambient: ['NET_RAW'] },
    readonlyRootfs: true,
    noNewPrivileges: true,
    maskedPaths: ['/proc/secret'],
    readonlyPaths: ['/proc/ro'],
    seccomp: { kind: 'localhost', path: profile, field: 'linux.security_context.seccomp.localhost_ref' },
  };
}

interface Chain {
  spec: ContainerSpec;
  generated: GeneratedContainer;
  plan: ProcessSpec;
}

const cgroupView = { mode: 'v1' as const, paths: { cpu: '/sys/fs/cgroup/cpu/kubepods/poduid1/nodecri-c0ffee' } };

async function chain(spec: ContainerSpec, over: Partial<GenerateInput> = {}): Promise<Chain> {
  const generated = await generateSpec({
    containerId: 'c0ffee',
    spec,
    imageName: 'docker.io/library/busybox:1',
    imageConfig: { user: null, env: ['PATH=/bin'], entrypoint: ['/entry'], cmd: ['cmd'], workingDir: null, stopSignal: null, volumes: null, labels: null },
    rootfs: path.join(dir, 'rootfs'),
    sandbox,
    logPath: '/var/log/pods/default_web_uid1/app/0.log',
    podPidNamespace: '/proc/42/ns/pid',
    targetPid: 77,
    defaults: { ...defaultRuntimeDefaults(), arch: 'x64', pidsLimit: 1024, rlimits: [{ type: 'RLIMIT_NOFILE', soft: 4096, hard: 8192 }] },
    // host/shared is on a shared mount, so the bidirectional mount may be made
    mountInfo: `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n`,
    ...over,
  });
  // Through JSON, as config.json is written and read back.
  const saved = JSON.parse(JSON.stringify(generated.spec));
  const plan = containerProcessSpec(
    saved,
    ['/sys/fs/cgroup/cpu/kubepods/poduid1/nodecri-c0ffee/cgroup.procs'],
    { stdin: 'pipe', stdout: { fd: 10 }, stderr: { fd: 11 } },
    cgroupView,
  );
  return { spec, generated, plan };
}

type Check = (c: Chain) => void | Promise<void>;
/** Where a field goes: every key of T, none optional. */
type Table<T> = { [K in keyof Required<T>]: Check };

const bind = (c: Chain, dest: string) => {
  const m = c.plan.mounts.find((x) => x.destination === dest);
  assert.ok(m, `no mount at ${dest}: ${c.plan.mounts.map((x) => x.destination).join(' ')}`);
  return m;
};

const mountChecks: Table<ContainerMount> = {
  containerPath: (c) => void bind(c, '/data'), // cleaned
  hostPath: (c) => assert.equal(bind(c, '/data').source, hostData), // symlinks resolved
  readonly: (c) => assert.ok(bind(c, '/data').options.includes('ro') && bind(c, '/shared').options.includes('rw')),
  recursiveReadOnly: (c) => assert.ok(bind(c, '/data').options.includes('rro')),
  propagation: (c) => {
    assert.ok(bind(c, '/data').options.includes('rprivate'));
    assert.ok(bind(c, '/shared').options.includes('rshared'));
    assert.equal(c.plan.rootPropagation, 'rshared');
  },
  // nodecri runs without SELinux: kept for the status only
  selinuxRelabel: (c) => assert.equal(c.spec.mounts[0]!.selinuxRelabel, true),
};

const deviceChecks: Table<ContainerDevice> = {
  hostPath: (c) =>
    assert.deepEqual(
      c.plan.devices.filter((d) => d.path === '/dev/xzero').map((d) => [d.type, d.major, d.minor]),
      [['c', 1, 5]],
    ),
  containerPath: (c) => assert.ok(c.plan.devices.some((d) => d.path === '/dev/xzero' && d.hostPath === null)),
  // the device cgroup rule, in config.json and handed to the cgroup manager
  permissions: (c) => {
    assert.deepEqual(c.generated.spec.linux.resources.devices.at(-1), { allow: true, type: 'c', major: 1, minor: 5, access: 'rw' });
    assert.deepEqual(c.generated.resources.devices?.at(-1), { allow: true, type: 'c', major: 1, minor: 5, access: 'rw' });
  },
};

const resourceChecks: Table<Resources> = {
  cpuShares: (c) => assert.equal(c.generated.resources.cpuShares, 512),
  cpuQuota: (c) => assert.equal(c.generated.resources.cpuQuota, 50000),
  cpuPeriod: (c) => assert.equal(c.generated.resources.cpuPeriod, 100000),
  cpusetCpus: (c) => assert.equal(c.generated.resources.cpusetCpus, '0-1'),
  cpusetMems: (c) => assert.equal(c.generated.resources.cpusetMems, '0'),
  memoryLimitBytes: (c) => assert.equal(c.generated.resources.memoryLimitBytes, 64n << 20n),
  memorySwapLimitBytes: (c) => assert.equal(c.generated.resources.memorySwapLimitBytes, 128n << 20n),
  pidsLimit: (c) => assert.equal(c.generated.resources.pidsLimit, 1024),
  hugepageLimits: (c) => assert.deepEqual(c.generated.resources.hugepageLimits, [{ pageSize: '2MB', limit: 4n << 20n }]),
  unified: (c) => assert.deepEqual(c.generated.resources.unified, { 'memory.high': '33554432' }),
  devices: (c) => assert.deepEqual(c.generated.resources.devices?.[0], { allow: false, type: 'a', major: null, minor: null, access: 'rwm' }),
};

const sub =
  <T>(table: Table<T>): Check =>
  async (c) => {
    for (const check of Object.values(table) as Check[]) await check(c);
  };

const checks: Table<ContainerSpec> = {
  name: (c) => assert.equal(c.generated.spec.annotations['io.kubernetes.cri.container-name'], 'app-full'),
  // names the record (the status echoes it: cri/convert/container.test.ts)
  attempt: (c) => assert.match(containerName(c.spec, sandbox.spec), /^k8s_app-full_web_default_uid1_3$/),
  // the service resolves it to the image (the status echoes it: cri/convert/container.test.ts)
  image: (c) => assert.equal(c.spec.image.image, 'busybox:1'),
  command: (c) => assert.deepEqual(c.plan.args.slice(0, 1), ['/bin/app']),
  args: (c) => assert.deepEqual(c.plan.args, ['/bin/app', '--flag', 'x']),
  workingDir: (c) => assert.equal(c.plan.cwd, '/work'),
  env: (c) => assert.deepEqual(c.plan.env, ['PATH=/bin', 'HOSTNAME=web-0', 'TERM=xterm', 'LANG=C.UTF-8', 'EMPTY=', 'HOME=/home/app']),
  mounts: sub(mountChecks),
  devices: sub(deviceChecks),
  // the record's, for the status and the list filters
  labels: (c) => assert.deepEqual(c.spec.labels, { tier: 'web' }),
  annotations: (c) => assert.equal(c.generated.spec.annotations['example.com/k'], 'v'),
  // the service makes it absolute under the pod's log dir and writes the log there
  logPath: (c) => assert.equal(c.generated.spec.annotations['io.nodecri.log-path'], path.join(sandbox.spec.logDirectory, c.spec.logPath)),
  // the service's stdio: a pipe for stdin
  stdin: (c) => assert.equal(c.generated.stdin, true),
  stdinOnce: (c) => assert.equal(c.generated.stdinOnce, true),
  tty: (c) => assert.deepEqual([c.plan.terminal, c.generated.tty], [true, true]),
  stopSignal: (c) => assert.deepEqual(c.generated.stopSignal, { name: 'SIGQUIT', number: 3 }),
  resources: sub(resourceChecks),
  oomScoreAdj: (c) => assert.equal(c.plan.oomScoreAdj, 321),
  privileged: async (c) => {
    // The fixture is unprivileged so that masks, seccomp and device rules show; privileged
    // lifts all three.
    assert.equal(c.spec.privileged, false);
    const p = await chain({ ...c.spec, privileged: true });
    assert.equal(p.plan.capabilities?.bounding.length, 41);
    assert.deepEqual([p.plan.seccomp, p.plan.maskedPaths, p.plan.readonlyPaths], [null, [], []]);
    assert.deepEqual(p.generated.resources.devices, [{ allow: true, type: 'a', major: null, minor: null, access: 'rwm' }]);
  },
  namespaces: async (c) => {
    const ns = (p: ProcessSpec) => p.namespaces.map((n) => `${n.type}${n.path === null ? '' : `=${n.path}`}`);
    // network and ipc NODE: the host's (none joined, none new); pid TARGET: the target's
    assert.deepEqual(ns(c.plan), ['pid=/proc/77/ns/pid', `uts=${sandbox.pins.uts}`, 'mount']);
    assert.equal(bind(c, '/dev/shm').source, '/dev/shm');
    // the service resolves targetId to the target's pid
    assert.equal(c.spec.namespaces.targetId, 'target0');
    const pod = await chain({ ...c.spec, namespaces: { network: 'POD', pid: 'POD', ipc: 'POD', targetId: '' } });
    assert.deepEqual(ns(pod.plan), ['pid=/proc/42/ns/pid', `network=${sandbox.pins.net}`, `ipc=${sandbox.pins.ipc}`, `uts=${sandbox.pins.uts}`, 'mount']);
  },
  user: async (c) => {
    // runAsUsername app (1000), runAsGroup 55, supplemental 7; Strict: not wheel (10)
    assert.deepEqual([c.plan.uid, c.plan.gid, c.plan.additionalGids], [1000, 55, [55, 7]]);
    const byUid = await chain({ ...c.spec, user: { ...c.spec.user, runAsUsername: '', runAsUser: 1234, supplementalGroupsPolicy: 'Merge' } });
    assert.deepEqual([byUid.plan.uid, byUid.plan.gid, byUid.plan.additionalGids], [1234, 55, [55, 7]]);
    const merged = await chain({ ...c.spec, user: { ...c.spec.user, supplementalGroupsPolicy: 'Merge' } });
    assert.deepEqual(merged.plan.additionalGids, [55, 10, 7]);
  },
  capabilities: (c) => {
    const caps = c.plan.capabilities!;
    assert.ok(caps.bounding.includes('CAP_NET_RAW') && caps.bounding.includes('CAP_SYS_TIME') && !caps.bounding.includes('CAP_KILL'));
    assert.deepEqual(caps.ambient, ['CAP_NET_RAW']);
  },
  readonlyRootfs: (c) => {
    assert.equal(c.plan.rootReadonly, true);
    assert.ok(bind(c, '/etc/hosts').options.includes('ro'));
  },
  noNewPrivileges: (c) => assert.equal(c.plan.noNewPrivileges, true),
  maskedPaths: (c) => assert.deepEqual(c.plan.maskedPaths, ['/proc/secret']),
  readonlyPaths: (c) => assert.deepEqual(c.plan.readonlyPaths, ['/proc/ro']),
  seccomp: (c) =>
    assert.deepEqual(c.plan.seccomp, {
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: null,
      architectures: ['SCMP_ARCH_X86_64'],
      flags: [],
      syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', errnoRet: null, args: [] }],
    }),
};

describe('the translation chain: container spec -> config.json -> process plan', () => {
  it('the fixture sets every field the tables name', () => {
    assert.deepEqual(Object.keys(full()).sort(), Object.keys(checks).sort());
    assert.deepEqual(Object.keys(privateMount).sort(), Object.keys(mountChecks).sort());
    assert.deepEqual(Object.keys(device).sort(), Object.keys(deviceChecks).sort());
    assert.deepEqual(Object.keys(resources).sort(), Object.keys(resourceChecks).sort());
  });

  for (const [field, check] of Object.entries(checks) as [keyof ContainerSpec, Check][]) {
    it(`${field} reaches the plan`, async () => check(await chain(full())));
  }

  it('what the runtime adds reaches the plan from config.json: /dev nodes and symlinks, rlimits, cgroup mounts, hostname, sysctls', async () => {
    const c = await chain(full());
    const saved = c.generated.spec;
    // the default nodes are in config.json, and the plan makes exactly what it lists
    assert.deepEqual(saved.linux.devices.slice(0, -1), defaultDeviceNodes());
    assert.deepEqual(c.plan.devices, deviceSpecs(saved.linux.devices));
    assert.ok(c.plan.devices.filter((d) => d.path !== '/dev/xzero').every((d) => d.hostPath === d.path && d.fileMode === 0o666));
    assert.deepEqual(c.plan.symlinks, DEV_SYMLINKS);
    assert.deepEqual(c.plan.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 4096, hard: 8192 }]);
    assert.equal(c.plan.hostname, 'web-0');
    assert.deepEqual(c.plan.sysctls, saved.linux.sysctl);
    // the cgroup mount made concrete for a v1 host: a tmpfs with the container's dirs bound
    assert.deepEqual(
      c.plan.mounts.filter((m) => m.destination.startsWith('/sys/fs/cgroup')).map((m) => [m.destination, m.type, m.source]),
      [
        ['/sys/fs/cgroup', 'tmpfs', 'tmpfs'],
        ['/sys/fs/cgroup/cpu', 'bind', cgroupView.paths.cpu],
      ],
    );
    assert.deepEqual(c.plan.cgroupProcs, ['/sys/fs/cgroup/cpu/kubepods/poduid1/nodecri-c0ffee/cgroup.procs']);
    assert.equal(c.plan.rootfs, path.join(dir, 'rootfs'));
    // kubelet's masks when none are given
    const bare = await chain({ ...full(), maskedPaths: null, readonlyPaths: null });
    assert.deepEqual(bare.plan.maskedPaths, DEFAULT_MASKED_PATHS);
  });
});
