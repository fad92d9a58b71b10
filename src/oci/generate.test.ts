import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ContainerConfig__Output } from '../cri/generated/runtime/v1/ContainerConfig';
import type { LinuxContainerResources__Output } from '../cri/generated/runtime/v1/LinuxContainerResources';
import type { LinuxContainerSecurityContext__Output } from '../cri/generated/runtime/v1/LinuxContainerSecurityContext';
import type { Mount__Output } from '../cri/generated/runtime/v1/Mount';
import type { NamespaceOption__Output } from '../cri/generated/runtime/v1/NamespaceOption';
import { RuntimeError } from '../domain/errors';
import type { SandboxRecord } from '../sandbox/model';
import { DEFAULT_CAPABILITIES } from './capabilities';
import {
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH_ENV,
  DEFAULT_READONLY_PATHS,
  commandLine,
  defaultRuntimeDefaults,
  generateSpec,
  type GenerateInput,
  type ImageConfig,
} from './generate';
import type { OciSeccomp } from './types';

let dir: string;
let rootfs: string;
let sandbox: SandboxRecord;
let hostDir: string;

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodecri-oci-gen-'));
  rootfs = path.join(dir, 'rootfs');
  await fsp.mkdir(path.join(rootfs, 'etc'), { recursive: true });
  await fsp.writeFile(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
  await fsp.writeFile(path.join(rootfs, 'etc/group'), 'root:x:0:\nwheel:x:10:root,app\napp:x:1000:\n');
  hostDir = path.join(dir, 'host');
  await fsp.mkdir(path.join(hostDir, 'data/sub'), { recursive: true });
  await fsp.symlink(path.join(hostDir, 'data'), path.join(hostDir, 'link'));
  const run = path.join(dir, 'sandbox');
  await fsp.mkdir(run);
  sandbox = {
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
  };
});
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

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

function resources(over: Partial<LinuxContainerResources__Output> = {}): LinuxContainerResources__Output {
  return {
    cpu_period: '0',
    cpu_quota: '0',
    cpu_shares: '0',
    memory_limit_in_bytes: '0',
    oom_score_adj: '0',
    cpuset_cpus: '',
    cpuset_mems: '',
    hugepage_limits: [],
    unified: {},
    memory_swap_limit_in_bytes: '0',
    ...over,
  };
}

function mount(over: Partial<Mount__Output>): Mount__Output {
  return {
    container_path: '',
    host_path: '',
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

function nsOptions(over: Partial<NamespaceOption__Output>): NamespaceOption__Output {
  return { network: 'POD', pid: 'CONTAINER', ipc: 'POD', target_id: '', userns_options: null, ...over };
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
    log_path: 'app/0.log',
    stdin: false,
    stdin_once: false,
    tty: false,
    linux: { resources: null, security_context: securityContext({ namespace_options: nsOptions({}) }) },
    windows: null,
    CDI_devices: [],
    stop_signal: 'RUNTIME_DEFAULT',
    ...over,
  };
}

const image = (over: Partial<ImageConfig> = {}): ImageConfig => ({
  user: null,
  env: ['PATH=/bin:/usr/bin', 'LANG=C'],
  entrypoint: null,
  cmd: ['sh'],
  workingDir: null,
  stopSignal: null,
  volumes: null,
  labels: null,
  ...over,
});

const withSc = (over: Partial<LinuxContainerSecurityContext__Output>, res: LinuxContainerResources__Output | null = null) =>
  config({ linux: { resources: res, security_context: securityContext({ namespace_options: nsOptions({}), ...over }) } });

function input(over: Partial<GenerateInput> = {}): GenerateInput {
  return {
    containerId: 'c0ffee',
    config: config(),
    imageName: 'docker.io/library/busybox:latest',
    imageConfig: image(),
    rootfs,
    sandbox,
    logPath: '/var/log/pods/default_web_uid1/app/0.log',
    podPidNamespace: null,
    targetPid: null,
    defaults: { ...defaultRuntimeDefaults(), arch: 'x64' },
    mountInfo: null,
    ...over,
  };
}

const invalid = (re: RegExp) => (e: unknown) => e instanceof RuntimeError && e.kind === 'invalid-argument' && re.test(e.message);
const allowedNames = (s: OciSeccomp) => new Set(s.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));

describe('commandLine', () => {
  const img = { entrypoint: ['/entry'], cmd: ['cmd1', 'cmd2'] };
  it('follows kubelet\'s command/args rules', () => {
    assert.deepEqual(commandLine([], [], img), ['/entry', 'cmd1', 'cmd2']);
    assert.deepEqual(commandLine([], ['a'], img), ['/entry', 'a']);
    assert.deepEqual(commandLine(['/bin/x'], [], img), ['/bin/x']);
    assert.deepEqual(commandLine(['/bin/x'], ['a', 'b'], img), ['/bin/x', 'a', 'b']);
    assert.deepEqual(commandLine([], [], { entrypoint: [''], cmd: ['c'] }), ['c']);
    assert.deepEqual(commandLine([], ['a'], { entrypoint: null, cmd: ['c'] }), ['a']);
  });
  it('refuses an empty command', () => {
    assert.throws(() => commandLine([], [], { entrypoint: null, cmd: null }), invalid(/^no command specified/));
  });
});

describe('generateSpec: process', () => {
  it('env: defaults, image env, CRI env overriding by key', async () => {
    const { spec } = await generateSpec(
      input({
        config: config({
          envs: [
            { key: 'LANG', value: Buffer.from('en_US.UTF-8') },
            { key: 'FOO', value: Buffer.from('a=b') },
          ],
        }),
      }),
    );
    assert.deepEqual(spec.process.env, ['PATH=/bin:/usr/bin', 'HOSTNAME=web-0', 'LANG=en_US.UTF-8', 'FOO=a=b', 'HOME=/root']);
  });

  it('env: PATH default when the image has none, TERM for a tty, HOME from passwd', async () => {
    const { spec, tty } = await generateSpec(
      input({ config: { ...withSc({ run_as_user: { value: '1000' } }), tty: true }, imageConfig: image({ env: null }) }),
    );
    assert.deepEqual(spec.process.env, [`PATH=${DEFAULT_PATH_ENV}`, 'HOSTNAME=web-0', 'TERM=xterm', 'HOME=/home/app']);
    assert.equal(spec.process.terminal, true);
    assert.equal(tty, true);
  });

  it('cwd: CRI working_dir, else image WorkingDir, else /', async () => {
    assert.equal((await generateSpec(input({ config: config({ working_dir: '/w' }), imageConfig: image({ workingDir: '/img' }) }))).spec.process.cwd, '/w');
    assert.equal((await generateSpec(input({ imageConfig: image({ workingDir: '/img' }) }))).spec.process.cwd, '/img');
    assert.equal((await generateSpec(input())).spec.process.cwd, '/');
    await assert.rejects(generateSpec(input({ config: config({ working_dir: 'rel' }) })), invalid(/working_dir "rel" must be an absolute path/));
  });

  it('args, stdin flags and the no-command error through generateSpec', async () => {
    const r = await generateSpec(input({ config: config({ args: ['-c', 'echo hi'], stdin: true, stdin_once: true }), imageConfig: image({ entrypoint: ['/bin/sh'] }) }));
    assert.deepEqual(r.spec.process.args, ['/bin/sh', '-c', 'echo hi']);
    assert.deepEqual([r.stdin, r.stdinOnce, r.tty], [true, true, false]);
    await assert.rejects(generateSpec(input({ imageConfig: image({ cmd: null }) })), invalid(/no command specified/));
  });

  it('user from the image and from the security context', async () => {
    const a = await generateSpec(input({ imageConfig: image({ user: 'app' }) }));
    assert.deepEqual(a.spec.process.user, { uid: 1000, gid: 1000, additionalGids: [1000, 10] });
    const b = await generateSpec(input({ config: withSc({ run_as_user: { value: '1234' }, run_as_group: { value: '55' }, supplemental_groups: ['7'] }) }));
    assert.deepEqual(b.spec.process.user, { uid: 1234, gid: 55, additionalGids: [55, 7] });
    await assert.rejects(generateSpec(input({ imageConfig: image({ user: 'ghost' }) })), invalid(/user "ghost" not found/));
  });

  it('stop signal: CRI stop_signal, else the image StopSignal, else SIGTERM', async () => {
    assert.deepEqual((await generateSpec(input())).stopSignal, { name: 'SIGTERM', number: 15 });
    assert.deepEqual((await generateSpec(input({ imageConfig: image({ stopSignal: 'SIGQUIT' }) }))).stopSignal, { name: 'SIGQUIT', number: 3 });
    assert.deepEqual((await generateSpec(input({ imageConfig: image({ stopSignal: '10' }) }))).stopSignal, { name: 'SIGUSR1', number: 10 });
    assert.deepEqual((await generateSpec(input({ imageConfig: image({ stopSignal: 'rtmin+3' }) }))).stopSignal, { name: 'SIGRTMIN+3', number: 37 });
    assert.deepEqual(
      (await generateSpec(input({ config: config({ stop_signal: 'SIGINT' }), imageConfig: image({ stopSignal: 'SIGQUIT' }) }))).stopSignal,
      { name: 'SIGINT', number: 2 },
    );
    await assert.rejects(generateSpec(input({ imageConfig: image({ stopSignal: 'SIGNOPE' }) })), invalid(/image stop signal "SIGNOPE"/));
  });
});

describe('generateSpec: security', () => {
  it('root gets the default capabilities; a non-root user has none effective', async () => {
    const root = (await generateSpec(input())).spec.process.capabilities;
    assert.equal(root.bounding.length, DEFAULT_CAPABILITIES.length);
    assert.deepEqual(root.effective, root.bounding);
    const user = (await generateSpec(input({ config: withSc({ run_as_user: { value: '1000' }, capabilities: { add_capabilities: ['NET_RAW'], drop_capabilities: ['KILL'], add_ambient_capabilities: [] } }) }))).spec.process.capabilities;
    assert.ok(user.bounding.includes('CAP_NET_RAW') && !user.bounding.includes('CAP_KILL'));
    assert.deepEqual([user.effective, user.permitted], [[], []]);
  });

  it('masked and readonly paths: kubelet defaults, or the CRI lists', async () => {
    const d = (await generateSpec(input())).spec.linux;
    assert.deepEqual(d.maskedPaths, DEFAULT_MASKED_PATHS);
    assert.deepEqual(d.readonlyPaths, DEFAULT_READONLY_PATHS);
    const c = (await generateSpec(input({ config: withSc({ masked_paths: ['/proc/x'], readonly_paths: ['/proc/y'] }) }))).spec.linux;
    assert.deepEqual([c.maskedPaths, c.readonlyPaths], [['/proc/x'], ['/proc/y']]);
  });

  it('no_new_privs and readonly rootfs', async () => {
    const { spec } = await generateSpec(input({ config: withSc({ no_new_privs: true, readonly_rootfs: true }) }));
    assert.equal(spec.process.noNewPrivileges, true);
    assert.deepEqual(spec.root, { path: rootfs, readonly: true });
    for (const f of ['/etc/hostname', '/etc/hosts', '/etc/resolv.conf']) {
      assert.ok(spec.mounts.find((m) => m.destination === f)?.options.includes('ro'), f);
    }
    assert.equal((await generateSpec(input())).spec.root.readonly, false);
  });

  it('privileged: every capability, no seccomp, no masks, writable sysfs, every device allowed', async () => {
    const privSandbox = { ...sandbox, spec: { ...sandbox.spec, privileged: true } };
    const { spec } = await generateSpec(input({ sandbox: privSandbox, config: withSc({ privileged: true, seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' } }) }));
    assert.equal(spec.process.capabilities.bounding.length, 41);
    assert.equal(spec.linux.seccomp, undefined);
    assert.deepEqual([spec.linux.maskedPaths, spec.linux.readonlyPaths], [[], []]);
    assert.ok(spec.mounts.find((m) => m.destination === '/sys')?.options.includes('rw'));
    assert.ok(spec.mounts.find((m) => m.destination === '/sys/fs/cgroup')?.options.includes('rw'));
    assert.deepEqual(spec.linux.resources.devices, [{ allow: true, access: 'rwm' }]);
    await assert.rejects(generateSpec(input({ config: withSc({ privileged: true }) })), invalid(/sandbox sb0123456789 is not privileged/));
  });

  it('seccomp: unset and Unconfined give none, RuntimeDefault the default profile', async () => {
    assert.equal((await generateSpec(input())).spec.linux.seccomp, undefined);
    assert.equal((await generateSpec(input({ config: withSc({ seccomp: { profile_type: 'Unconfined', localhost_ref: '' } }) }))).spec.linux.seccomp, undefined);
    assert.equal((await generateSpec(input({ config: withSc({ seccomp_profile_path: 'unconfined' }) }))).spec.linux.seccomp, undefined);
    for (const sc of [{ seccomp: { profile_type: 'RuntimeDefault' as const, localhost_ref: '' } }, { seccomp_profile_path: 'runtime/default' }, { seccomp_profile_path: 'docker/default' }]) {
      const s = (await generateSpec(input({ config: withSc(sc) }))).spec.linux.seccomp;
      assert.ok(s);
      assert.equal(s.defaultAction, 'SCMP_ACT_ERRNO');
      assert.equal(s.defaultErrnoRet, 1);
      const allowed = allowedNames(s);
      for (const denied of ['unshare', 'mount', 'setns', 'keyctl', 'bpf']) assert.ok(!allowed.has(denied), denied);
      for (const ok of ['read', 'execve', 'openat', 'exit_group']) assert.ok(allowed.has(ok), ok);
    }
  });

  it('seccomp: RuntimeDefault follows the capabilities (CAP_SYS_ADMIN lifts the mount and namespace refusals)', async () => {
    const s = (await generateSpec(input({ config: withSc({ seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' }, capabilities: { add_capabilities: ['SYS_ADMIN'], drop_capabilities: [], add_ambient_capabilities: [] } }) }))).spec.linux.seccomp!;
    const allowed = allowedNames(s);
    for (const n of ['unshare', 'mount', 'setns', 'clone', 'clone3']) assert.ok(allowed.has(n), n);
    assert.ok(!allowed.has('keyctl'));
  });

  it('seccomp: Localhost reads the profile; a missing one is an error naming it', async () => {
    const file = path.join(dir, 'profile.json');
    await fsp.writeFile(file, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['sethostname'], action: 'SCMP_ACT_ERRNO' }] }));
    const s = (await generateSpec(input({ config: withSc({ seccomp: { profile_type: 'Localhost', localhost_ref: file } }) }))).spec.linux.seccomp;
    assert.deepEqual(s, { defaultAction: 'SCMP_ACT_ALLOW', architectures: [], syscalls: [{ names: ['sethostname'], action: 'SCMP_ACT_ERRNO' }] });
    const old = (await generateSpec(input({ config: withSc({ seccomp_profile_path: `localhost/${file}` }) }))).spec.linux.seccomp;
    assert.deepEqual(old, s);
    const missing = path.join(dir, 'missing.json');
    await assert.rejects(
      generateSpec(input({ config: withSc({ seccomp: { profile_type: 'Localhost', localhost_ref: missing } }) })),
      invalid(new RegExp(`seccomp profile ${missing} does not exist`)),
    );
    await assert.rejects(generateSpec(input({ config: withSc({ seccomp: { profile_type: 'Localhost', localhost_ref: '' } }) })), invalid(/needs a localhost_ref/));
    await assert.rejects(generateSpec(input({ config: withSc({ seccomp_profile_path: 'bogus' }) })), invalid(/unknown profile "bogus"/));
  });
});

describe('generateSpec: mounts', () => {
  it('defaults, pod files, then CRI mounts sorted by depth', async () => {
    const { spec } = await generateSpec(
      input({
        config: config({
          mounts: [
            mount({ container_path: '/data/sub', host_path: path.join(hostDir, 'data/sub') }),
            mount({ container_path: '/data', host_path: path.join(hostDir, 'link'), readonly: true }),
          ],
        }),
      }),
    );
    assert.deepEqual(
      spec.mounts.map((m) => m.destination),
      ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/data', '/data/sub'],
    );
    const byDest = new Map(spec.mounts.map((m) => [m.destination, m]));
    assert.deepEqual(byDest.get('/dev')?.options, ['nosuid', 'strictatime', 'mode=755', 'size=65536k']);
    assert.deepEqual(byDest.get('/dev/pts')?.options, ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']);
    assert.equal(byDest.get('/dev/shm')?.source, sandbox.shm.path);
    assert.ok(byDest.get('/sys')?.options.includes('ro'));
    assert.equal(byDest.get('/etc/hosts')?.source, sandbox.files.hosts);
    // the symlinked host path is resolved; readonly becomes ro
    assert.deepEqual(byDest.get('/data'), { destination: '/data', type: 'bind', source: path.join(hostDir, 'data'), options: ['rbind', 'rprivate', 'ro'] });
    assert.deepEqual(byDest.get('/data/sub')?.options, ['rbind', 'rprivate', 'rw']);
    assert.equal(spec.linux.rootfsPropagation, 'rslave');
  });

  it('a CRI mount at /etc/hosts replaces the pod\'s; host IPC uses the host /dev/shm', async () => {
    const hosts = path.join(hostDir, 'hosts');
    await fsp.writeFile(hosts, '127.0.0.1 localhost\n');
    const { spec } = await generateSpec(
      input({ config: config({ mounts: [mount({ container_path: '/etc/hosts', host_path: hosts })], linux: { resources: null, security_context: securityContext({ namespace_options: nsOptions({ ipc: 'NODE' }) }) } }) }),
    );
    const all = spec.mounts.filter((m) => m.destination === '/etc/hosts');
    assert.equal(all.length, 1);
    assert.equal(all[0]!.source, hosts);
    assert.equal(spec.mounts.find((m) => m.destination === '/dev/shm')?.source, '/dev/shm');
    assert.ok(!spec.linux.namespaces.some((n) => n.type === 'ipc'));
  });

  it('a missing host path is an invalid argument naming it', async () => {
    const missing = path.join(hostDir, 'nope');
    await assert.rejects(
      generateSpec(input({ config: config({ mounts: [mount({ container_path: '/x', host_path: missing })] }) })),
      invalid(new RegExp(`mounts\\[0\\]: host path ${missing} does not exist`)),
    );
    await assert.rejects(generateSpec(input({ config: config({ mounts: [mount({ container_path: 'x', host_path: hostDir })] }) })), invalid(/container_path "x" must be an absolute path/));
  });

  it('propagation: rslave and rshared need a slave or shared host mount, and raise the rootfs propagation', async () => {
    const src = path.join(hostDir, 'data');
    const info = (opt: string) => `22 1 8:1 / / rw,relatime ${opt} - ext4 /dev/sda1 rw\n`;
    const gen = (propagation: Mount__Output['propagation'], mountInfo: string) =>
      generateSpec(input({ mountInfo, config: config({ mounts: [mount({ container_path: '/m', host_path: src, propagation })] }) }));

    const slave = (await gen('PROPAGATION_HOST_TO_CONTAINER', info('master:1'))).spec;
    assert.deepEqual(slave.mounts.at(-1)?.options, ['rbind', 'rslave', 'rw']);
    assert.equal(slave.linux.rootfsPropagation, 'rslave');
    const shared = (await gen('PROPAGATION_BIDIRECTIONAL', info('shared:1'))).spec;
    assert.deepEqual(shared.mounts.at(-1)?.options, ['rbind', 'rshared', 'rw']);
    assert.equal(shared.linux.rootfsPropagation, 'rshared');
    assert.equal((await gen('PROPAGATION_HOST_TO_CONTAINER', info('shared:1'))).spec.mounts.at(-1)?.options[1], 'rslave');

    await assert.rejects(gen('PROPAGATION_BIDIRECTIONAL', info('master:1')), invalid(/is on mount \/, which is not shared/));
    await assert.rejects(gen('PROPAGATION_HOST_TO_CONTAINER', info('')), invalid(/neither shared nor slave/));
  });

  it('recursive read-only needs readonly; image volumes not mounted are reported', async () => {
    const src = path.join(hostDir, 'data');
    const r = await generateSpec(
      input({
        config: config({ mounts: [mount({ container_path: '/v1', host_path: src, readonly: true, recursive_read_only: true })] }),
        imageConfig: image({ volumes: ['/v1', '/v2/', 'v3'] }),
      }),
    );
    assert.deepEqual(r.spec.mounts.at(-1)?.options, ['rbind', 'rprivate', 'ro', 'rro']);
    assert.deepEqual(r.uncoveredVolumes, ['/v2', '/v3']);
    await assert.rejects(
      generateSpec(input({ config: config({ mounts: [mount({ container_path: '/v1', host_path: src, recursive_read_only: true })] }) })),
      invalid(/recursive_read_only needs readonly/),
    );
  });
});

describe('generateSpec: linux', () => {
  it('namespaces by mode', async () => {
    const ns = async (o: Partial<NamespaceOption__Output>, extra: Partial<GenerateInput> = {}) =>
      (await generateSpec(input({ config: withSc({ namespace_options: nsOptions(o) }), ...extra }))).spec.linux.namespaces;
    const run = sandbox.runDir;
    assert.deepEqual(await ns({}), [
      { type: 'pid' },
      { type: 'network', path: `${run}/ns/net` },
      { type: 'ipc', path: `${run}/ns/ipc` },
      { type: 'uts', path: `${run}/ns/uts` },
      { type: 'mount' },
    ]);
    assert.deepEqual(await ns({ pid: 'POD' }, { podPidNamespace: '/proc/42/ns/pid' }).then((l) => l[0]), { type: 'pid', path: '/proc/42/ns/pid' });
    assert.deepEqual(await ns({ pid: 'TARGET', target_id: 'abc' }, { targetPid: 77 }).then((l) => l[0]), { type: 'pid', path: '/proc/77/ns/pid' });
    assert.deepEqual((await ns({ pid: 'NODE', network: 'NODE', ipc: 'NODE' })).map((n) => n.type), ['uts', 'mount']);
    // POD in a pod made without a shared PID namespace: the container gets its own.
    assert.deepEqual(await ns({ pid: 'POD' }).then((l) => l[0]), { type: 'pid' });
    await assert.rejects(ns({ pid: 'TARGET', target_id: 'abc' }), /target container "abc" has no running process/);

    // A pod on the host network has no uts pin: no uts namespace and no hostname.
    const hostNet = { ...sandbox, pins: { ...sandbox.pins, net: null, uts: null } };
    const r = await generateSpec(input({ sandbox: hostNet }));
    assert.deepEqual(r.spec.linux.namespaces.map((n) => n.type), ['pid', 'ipc', 'mount']);
    assert.equal(r.spec.hostname, undefined);
    assert.equal((await generateSpec(input())).spec.hostname, 'web-0');
    const cg = await generateSpec(input({ defaults: { ...defaultRuntimeDefaults(), cgroupNamespace: true } }));
    assert.deepEqual(cg.spec.linux.namespaces.at(-1), { type: 'cgroup' });
  });

  it('resources, oom_score_adj, pids limit and cgroups path', async () => {
    const res = resources({
      cpu_period: '100000',
      cpu_quota: '50000',
      cpu_shares: '512',
      memory_limit_in_bytes: '16777216',
      memory_swap_limit_in_bytes: '16777216',
      oom_score_adj: '-997',
      cpuset_cpus: '0-1',
      hugepage_limits: [{ page_size: '2MB', limit: '4194304' }],
      unified: { 'memory.high': '8388608' },
    });
    const r = await generateSpec(input({ config: withSc({}, res), defaults: { ...defaultRuntimeDefaults(), pidsLimit: 1024 } }));
    const { devices, ...rest } = r.spec.linux.resources;
    assert.deepEqual(rest, {
      cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0-1' },
      memory: { limit: 16777216, swap: 16777216 },
      pids: { limit: 1024 },
      hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }],
      unified: { 'memory.high': '8388608' },
    });
    assert.deepEqual(devices[0], { allow: false, access: 'rwm' });
    assert.equal(r.spec.process.oomScoreAdj, -997);
    assert.equal(r.resources.memoryLimitBytes, 16777216n);
    assert.equal(r.resources.pidsLimit, 1024);
    assert.equal(r.spec.linux.cgroupsPath, '/kubepods/poduid1/nodecri-c0ffee');
    assert.deepEqual(r.spec.linux.sysctl, {});

    const none = await generateSpec(input());
    assert.deepEqual(Object.keys(none.spec.linux.resources), ['devices']);
    assert.equal(none.spec.process.oomScoreAdj, undefined);
    await assert.rejects(generateSpec(input({ config: withSc({}, resources({ oom_score_adj: '1001' })) })), invalid(/oom_score_adj 1001/));
  });

  it('devices: stat for type and numbers; missing is an error', async () => {
    const r = await generateSpec(input({ config: config({ devices: [{ host_path: '/dev/null', container_path: '/dev/xnull', permissions: 'rw' }] }) }));
    assert.deepEqual(
      { ...r.spec.linux.devices[0], fileMode: undefined, uid: undefined, gid: undefined },
      { path: '/dev/xnull', type: 'c', major: 1, minor: 3, fileMode: undefined, uid: undefined, gid: undefined },
    );
    assert.deepEqual(r.spec.linux.resources.devices.at(-1), { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' });
    await assert.rejects(
      generateSpec(input({ config: config({ devices: [{ host_path: '/dev/nodecri-none', container_path: '/dev/x', permissions: '' }] }) })),
      invalid(/devices\[0\]: device \/dev\/nodecri-none does not exist/),
    );
    await assert.rejects(
      generateSpec(input({ config: config({ devices: [{ host_path: '/dev/null', container_path: '/dev/x', permissions: 'rx' }] }) })),
      invalid(/permissions "rx"/),
    );
    await assert.rejects(generateSpec(input({ config: config({ devices: [{ host_path: hostDir + '/hosts', container_path: '/dev/x', permissions: '' }] }) })), invalid(/is not a device/));
  });

  it('the device rules of config.json are the ones handed to the cgroup manager', async () => {
    const r = await generateSpec(input({ config: config({ devices: [{ host_path: '/dev/null', container_path: '/dev/xnull', permissions: 'rw' }] }) }));
    const oci = r.spec.linux.resources.devices;
    assert.equal(r.resources.devices?.length, oci.length);
    // Same order, the runtime-spec's absent fields made explicit: type "a", any, "rwm".
    assert.deepEqual(r.resources.devices?.[0], { allow: false, type: 'a', major: null, minor: null, access: 'rwm' });
    assert.deepEqual(r.resources.devices?.[1], { allow: true, type: 'c', major: null, minor: null, access: 'm' });
    assert.deepEqual(r.resources.devices?.at(-1), { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' });
    r.resources.devices?.forEach((d, i) => {
      const o = oci[i];
      assert.deepEqual(d, { allow: o.allow, type: o.type ?? 'a', major: o.major ?? null, minor: o.minor ?? null, access: o.access ?? 'rwm' });
    });
    const privSandbox = { ...sandbox, spec: { ...sandbox.spec, privileged: true } };
    const priv = await generateSpec(input({ sandbox: privSandbox, config: withSc({ privileged: true }) }));
    assert.deepEqual(priv.resources.devices, [{ allow: true, type: 'a', major: null, minor: null, access: 'rwm' }]);
  });

  it('annotations: the CRI ones, then ours (which cannot be overridden)', async () => {
    const r = await generateSpec(input({ config: config({ annotations: { a: 'b', 'io.kubernetes.cri.sandbox-id': 'spoof' } }) }));
    assert.deepEqual(r.spec.annotations, {
      a: 'b',
      'io.kubernetes.cri.sandbox-id': 'sb0123456789',
      'io.kubernetes.cri.container-type': 'container',
      'io.kubernetes.cri.container-name': 'app',
      'io.kubernetes.cri.sandbox-name': 'web',
      'io.kubernetes.cri.sandbox-namespace': 'default',
      'io.kubernetes.cri.sandbox-uid': 'uid1',
      'io.kubernetes.cri.image-name': 'docker.io/library/busybox:latest',
      'io.nodecri.log-path': '/var/log/pods/default_web_uid1/app/0.log',
    });
    assert.equal(r.spec.ociVersion, '1.1.0');
  });

  it('bad input: id, name, rootfs, log path', async () => {
    await assert.rejects(generateSpec(input({ containerId: '../x' })), invalid(/container id/));
    await assert.rejects(generateSpec(input({ config: config({ metadata: null }) })), invalid(/metadata.name is required/));
    await assert.rejects(generateSpec(input({ rootfs: 'rel' })), invalid(/rootfs "rel"/));
    await assert.rejects(generateSpec(input({ logPath: 'app/0.log' })), invalid(/log path "app\/0.log" must be absolute/));
  });

  it('the spec is plain JSON', async () => {
    const { spec } = await generateSpec(input({ config: withSc({ seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' } }) }));
    assert.deepEqual(JSON.parse(JSON.stringify(spec)), spec);
  });
});
