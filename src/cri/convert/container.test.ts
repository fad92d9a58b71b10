import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContainerRecord } from '../../container/model';
import { RuntimeError } from '../../domain/errors';
import { noResources } from '../../linux/cgroups';
import type { ContainerConfig__Output } from '../generated/runtime/v1/ContainerConfig';
import type { LinuxContainerSecurityContext__Output } from '../generated/runtime/v1/LinuxContainerSecurityContext';
import type { Mount__Output } from '../generated/runtime/v1/Mount';
import { containerListItem, containerSpecFromCri, containerStatusToCri, seccompChoice, stopSignalFromCri } from './container';

function securityContext(over: Partial<LinuxContainerSecurityContext__Output> = {}): LinuxContainerSecurityContext__Output {
  return {
    capabilities: null,
    privileged: false,
    namespace_options: null,
    selinux_options: null,
    run_as_user: null,
    run_as_username: '',
    readonly_rootfs: false,
    supplemental_groups: [],
    apparmor_profile: '',
    seccomp_profile_path: '',
    no_new_privs: false,
    run_as_group: null,
    masked_paths: [],
    readonly_paths: [],
    seccomp: null,
    apparmor: null,
    supplemental_groups_policy: 'Merge',
    ...over,
  };
}

function mount(over: Partial<Mount__Output>): Mount__Output {
  return {
    container_path: '/m',
    host_path: '/h',
    readonly: false,
    selinux_relabel: false,
    propagation: 'PROPAGATION_PRIVATE',
    uidMappings: [],
    gidMappings: [],
    recursive_read_only: false,
    image: null,
    image_sub_path: '',
    ...over,
  };
}

function config(over: Partial<ContainerConfig__Output> = {}): ContainerConfig__Output {
  return {
    metadata: { name: 'app', attempt: 0 },
    image: { image: 'busybox', annotations: {}, user_specified_image: '', runtime_handler: '', image_ref: '' },
    command: [],
    args: [],
    working_dir: '',
    envs: [],
    mounts: [],
    devices: [],
    labels: {},
    annotations: {},
    log_path: '',
    stdin: false,
    stdin_once: false,
    tty: false,
    linux: null,
    windows: null,
    CDI_devices: [],
    stop_signal: 'RUNTIME_DEFAULT',
    ...over,
  };
}

const withSc = (over: Partial<LinuxContainerSecurityContext__Output>) => config({ linux: { resources: null, security_context: securityContext(over) } });
const fails = (kind: string, re: RegExp) => (e: unknown) => e instanceof RuntimeError && e.kind === kind && re.test(e.message);
const invalid = (re: RegExp) => fails('invalid-argument', re);

/** A config with every field the spec takes set. */
const full = (): ContainerConfig__Output =>
  config({
    metadata: { name: 'app', attempt: 2 },
    image: { image: 'busybox:1', annotations: { x: 'y' }, user_specified_image: 'busybox', runtime_handler: 'rh', image_ref: 'sha256:1' },
    command: ['/bin/sh'],
    args: ['-c', 'true'],
    working_dir: '/w//x/',
    envs: [{ key: 'A', value: Buffer.from('b=c') }],
    mounts: [mount({ container_path: '/data', host_path: '/srv/data', readonly: true, recursive_read_only: true, selinux_relabel: true })],
    devices: [{ host_path: '/dev/fuse', container_path: '', permissions: '' }],
    labels: { l: '1' },
    annotations: { a: '2' },
    log_path: 'app/2.log',
    stdin: true,
    stdin_once: true,
    tty: true,
    stop_signal: 'SIGRTMINPLUS2',
    linux: {
      resources: {
        cpu_period: '100000',
        cpu_quota: '50000',
        cpu_shares: '512',
        memory_limit_in_bytes: '16777216',
        oom_score_adj: '-997',
        cpuset_cpus: '0-1',
        cpuset_mems: '0',
        hugepage_limits: [{ page_size: '2MB', limit: '4194304' }],
        unified: { 'memory.high': '8388608' },
        memory_swap_limit_in_bytes: '33554432',
      },
      security_context: securityContext({
        capabilities: { add_capabilities: ['NET_RAW'], drop_capabilities: ['KILL'], add_ambient_capabilities: ['NET_RAW'] },
        privileged: true,
        namespace_options: { network: 'NODE', pid: 'TARGET', ipc: 'CONTAINER', target_id: 'abc', userns_options: null },
        run_as_user: { value: '1000' },
        run_as_username: 'app',
        run_as_group: { value: '55' },
        supplemental_groups: ['7'],
        supplemental_groups_policy: 'Strict',
        readonly_rootfs: true,
        no_new_privs: true,
        masked_paths: ['/proc/x'],
        readonly_paths: ['/proc/y'],
        seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' },
      }),
    },
  });

describe('containerSpecFromCri', () => {
  it("carries every field into the spec, in the domain's names", () => {
    assert.deepEqual(containerSpecFromCri(full()), {
      name: 'app',
      attempt: 2,
      image: { image: 'busybox:1', annotations: { x: 'y' }, userSpecifiedImage: 'busybox', runtimeHandler: 'rh', imageRef: 'sha256:1' },
      command: ['/bin/sh'],
      args: ['-c', 'true'],
      workingDir: '/w/x/',
      env: [{ key: 'A', value: 'b=c' }],
      mounts: [{ containerPath: '/data', hostPath: '/srv/data', readonly: true, recursiveReadOnly: true, propagation: 'PROPAGATION_PRIVATE', selinuxRelabel: true }],
      devices: [{ hostPath: '/dev/fuse', containerPath: '/dev/fuse', permissions: 'rwm' }],
      labels: { l: '1' },
      annotations: { a: '2' },
      logPath: 'app/2.log',
      stdin: true,
      stdinOnce: true,
      tty: true,
      stopSignal: { name: 'SIGRTMIN+2', number: 36 },
      resources: {
        ...noResources(),
        cpuShares: 512,
        cpuQuota: 50000,
        cpuPeriod: 100000,
        cpusetCpus: '0-1',
        cpusetMems: '0',
        memoryLimitBytes: 16777216n,
        memorySwapLimitBytes: 33554432n,
        hugepageLimits: [{ pageSize: '2MB', limit: 4194304n }],
        unified: { 'memory.high': '8388608' },
      },
      oomScoreAdj: -997,
      privileged: true,
      namespaces: { network: 'NODE', pid: 'TARGET', ipc: 'CONTAINER', targetId: 'abc' },
      user: { runAsUsername: 'app', runAsUser: 1000, runAsGroup: 55, supplementalGroups: [7], supplementalGroupsPolicy: 'Strict' },
      capabilities: { add: ['NET_RAW'], drop: ['KILL'], ambient: ['NET_RAW'] },
      readonlyRootfs: true,
      noNewPrivileges: true,
      maskedPaths: ['/proc/x'],
      readonlyPaths: ['/proc/y'],
      seccomp: { kind: 'runtime-default' },
    });
  });

  it('a bare config: POD namespaces, no resources, the defaults left to the runtime', () => {
    const s = containerSpecFromCri(config());
    assert.deepEqual(
      [s.namespaces, s.resources, s.oomScoreAdj, s.maskedPaths, s.readonlyPaths, s.seccomp, s.stopSignal, s.workingDir, s.privileged],
      [{ network: 'POD', pid: 'POD', ipc: 'POD', targetId: '' }, null, null, null, null, { kind: 'unconfined' }, null, '', false],
    );
    assert.deepEqual(s.user, { runAsUsername: '', runAsUser: null, runAsGroup: null, supplementalGroups: [], supplementalGroupsPolicy: 'Merge' });
    // resources given with oom_score_adj 0: it is set (the process's is written)
    const r = containerSpecFromCri(config({ linux: { resources: { ...full().linux!.resources!, oom_score_adj: '0' }, security_context: null } }));
    assert.equal(r.oomScoreAdj, 0);
  });

  it('refuses bad input naming the field', () => {
    const cases: [ContainerConfig__Output | null, RegExp][] = [
      [null, /^config is missing$/],
      [config({ metadata: null }), /^config\.metadata\.name is empty$/],
      [config({ metadata: { name: '', attempt: 0 } }), /^config\.metadata\.name is empty$/],
      [config({ image: { ...config().image!, image: '' } }), /^config\.image\.image is empty$/],
      [withSc({ run_as_user: { value: '4294967295' } }), /^run_as_user: "4294967295" is not a valid id \(it is \(uid_t\)-1/],
      [withSc({ run_as_group: { value: 'x' } }), /^run_as_group: "x" is not a valid id/],
      [withSc({ supplemental_groups: ['1', '-1'] }), /^supplemental_groups\[1\]: "-1"/],
      [
        config({
          envs: [
            { key: 'A', value: Buffer.from('') },
            { key: 'B=C', value: Buffer.from('') },
          ],
        }),
        /^envs\[1\]: invalid name "B=C"/,
      ],
      [config({ envs: [{ key: '', value: Buffer.from('') }] }), /^envs\[0\]: invalid name ""/],
      [config({ working_dir: 'rel' }), /^working_dir "rel" must be an absolute path/],
      [config({ working_dir: `/${'x'.repeat(256)}` }), /^working_dir .* over NAME_MAX/],
      [
        config({ linux: { resources: { ...full().linux!.resources!, oom_score_adj: '1001' }, security_context: null } }),
        /^resources\.oom_score_adj 1001 is outside -1000\.\.1000$/,
      ],
      [config({ mounts: [mount({}), mount({ container_path: 'x' })] }), /^mounts\[1\]: container_path "x" must be an absolute path/],
      [config({ mounts: [mount({ host_path: 'h' })] }), /^mounts\[0\]: host_path "h" must be an absolute path/],
      [config({ mounts: [mount({ recursive_read_only: true })] }), /^mounts\[0\]: recursive_read_only needs readonly$/],
      [
        config({ mounts: [mount({ recursive_read_only: true, readonly: true, propagation: 'PROPAGATION_HOST_TO_CONTAINER' })] }),
        /^mounts\[0\]: recursive_read_only needs PROPAGATION_PRIVATE, got PROPAGATION_HOST_TO_CONTAINER$/,
      ],
      [config({ devices: [{ host_path: 'dev/null', container_path: '', permissions: '' }] }), /^devices\[0\]: host_path "dev\/null" must be an absolute path/],
      [config({ devices: [{ host_path: '/dev/null', container_path: 'x', permissions: '' }] }), /^devices\[0\]: container_path "x" must be an absolute path/],
      [config({ devices: [{ host_path: '/dev/null', container_path: '', permissions: 'rx' }] }), /^devices\[0\]: permissions "rx" must be a combination/],
      [config({ devices: [{ host_path: '/dev/null', container_path: '', permissions: 'rr' }] }), /^devices\[0\]: permissions "rr"/],
      [withSc({ seccomp: { profile_type: 'Localhost', localhost_ref: '' } }), /needs a localhost_ref/],
      [withSc({ seccomp_profile_path: 'bogus' }), /^seccomp_profile_path: unknown profile "bogus"/],
      [config({ stop_signal: 'SIGNOPE' as never }), /^stop_signal: "SIGNOPE" is not a known signal/],
    ];
    for (const [c, re] of cases) assert.throws(() => containerSpecFromCri(c), invalid(re), String(re));
  });

  it('refuses image volume and id-mapped mounts as unimplemented', () => {
    const img = { image: 'x', annotations: {}, user_specified_image: '', runtime_handler: '', image_ref: '' };
    assert.throws(() => containerSpecFromCri(config({ mounts: [mount({ image: img })] })), fails('unimplemented', /^mounts\[0\]: image volume mounts are not supported$/));
    assert.throws(
      () => containerSpecFromCri(config({ mounts: [mount({ uidMappings: [{ host_id: 1, container_id: 0, length: 1 }] })] })),
      fails('unimplemented', /^mounts\[0\]: id-mapped mounts are not supported$/),
    );
  });
});

describe('seccompChoice', () => {
  const sc = (o: object) => ({ seccomp: null, seccomp_profile_path: '', ...o }) as never;
  it('reads the profile message, then the deprecated path', () => {
    assert.deepEqual(seccompChoice(null), { kind: 'unconfined' });
    assert.deepEqual(seccompChoice(sc({})), { kind: 'unconfined' });
    assert.deepEqual(seccompChoice(sc({ seccomp_profile_path: 'unconfined' })), { kind: 'unconfined' });
    assert.deepEqual(seccompChoice(sc({ seccomp: { profile_type: 'Unconfined', localhost_ref: '' } })), { kind: 'unconfined' });
    assert.deepEqual(seccompChoice(sc({ seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' }, seccomp_profile_path: 'unconfined' })), { kind: 'runtime-default' });
    for (const p of ['runtime/default', 'docker/default']) assert.deepEqual(seccompChoice(sc({ seccomp_profile_path: p })), { kind: 'runtime-default' });
    assert.deepEqual(seccompChoice(sc({ seccomp: { profile_type: 'Localhost', localhost_ref: '/etc//p.json' } })), {
      kind: 'localhost',
      path: '/etc/p.json',
      field: 'linux.security_context.seccomp.localhost_ref',
    });
    assert.deepEqual(seccompChoice(sc({ seccomp_profile_path: 'localhost//etc/p.json' })), {
      kind: 'localhost',
      path: '/etc/p.json',
      field: 'linux.security_context.seccomp_profile_path',
    });
    assert.throws(() => seccompChoice(sc({ seccomp_profile_path: 'localhost/p.json' })), invalid(/must be absolute/));
    assert.throws(() => seccompChoice(sc({ seccomp: { profile_type: 'Unconfined', localhost_ref: '/x' } })), invalid(/localhost_ref must only be set/));
  });
});

describe('stopSignalFromCri', () => {
  it('reads the CRI enum spelling; RUNTIME_DEFAULT is none', () => {
    assert.deepEqual(stopSignalFromCri('SIGRTMINPLUS2'), { name: 'SIGRTMIN+2', number: 36 });
    assert.deepEqual(stopSignalFromCri('SIGRTMAXMINUS1'), { name: 'SIGRTMIN+29', number: 63 });
    assert.deepEqual(stopSignalFromCri('SIGINT'), { name: 'SIGINT', number: 2 });
    assert.equal(stopSignalFromCri('RUNTIME_DEFAULT'), null);
    assert.equal(stopSignalFromCri(''), null);
  });
});

describe('container records to the CRI', () => {
  const record = (): ContainerRecord => ({
    version: 2,
    id: 'c1',
    name: 'k8s_app',
    sandboxId: 'sb1',
    spec: containerSpecFromCri(full()),
    image: { id: 'sha256:img', ref: 'docker.io/library/busybox@sha256:d', name: 'busybox:1' },
    state: 'CONTAINER_RUNNING',
    createdAt: '1',
    startedAt: '2',
    finishedAt: '0',
    exitCode: 0,
    reason: '',
    message: '',
    stateDir: '/s',
    runDir: '/r',
    rootfs: '/r/rootfs',
    upperDir: '/u',
    logPath: '/var/log/pods/x/app/2.log',
    cgroupPath: '/kubepods/c1',
    resources: null,
    stopSignal: 'SIGTERM',
    pid: 7,
    pidStartTime: '9',
  });

  it('the status echoes what was asked for, from the spec', () => {
    const s = containerStatusToCri(record(), null);
    const asked = full();
    assert.deepEqual(s.metadata, asked.metadata);
    assert.deepEqual(s.image, asked.image);
    assert.deepEqual(s.labels, asked.labels);
    assert.deepEqual(s.annotations, asked.annotations);
    assert.deepEqual(s.mounts, asked.mounts);
    assert.equal(s.user, null);
    assert.deepEqual(
      [s.id, s.state, s.log_path, s.image_ref, s.image_id],
      ['c1', 'CONTAINER_RUNNING', '/var/log/pods/x/app/2.log', 'docker.io/library/busybox@sha256:d', 'sha256:img'],
    );
  });

  it('the list item too', () => {
    const l = containerListItem(record());
    assert.deepEqual([l.metadata, l.image, l.labels, l.annotations, l.pod_sandbox_id], [full().metadata, full().image, { l: '1' }, { a: '2' }, 'sb1']);
  });
});
