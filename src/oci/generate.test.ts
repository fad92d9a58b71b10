import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ContainerMount, ContainerSpec } from '../container/spec';
import { RuntimeError } from '../domain/errors';
import { noResources } from '../linux/cgroups';
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
import { bareContainerSpec, readySandboxRecord } from '../../test/helpers/specs';

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
  sandbox = readySandboxRecord(run);
});
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

const spec = bareContainerSpec;

function mount(over: Partial<ContainerMount>): ContainerMount {
  return { containerPath: '', hostPath: '', readonly: false, recursiveReadOnly: false, propagation: 'PROPAGATION_PRIVATE', selinuxRelabel: false, ...over };
}

const asUser = (u: Partial<ContainerSpec['user']>): Pick<ContainerSpec, 'user'> => ({ user: { ...spec().user, ...u } });

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

function input(over: Partial<GenerateInput> = {}): GenerateInput {
  return {
    containerId: 'c0ffee',
    spec: spec(),
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
  it("follows kubelet's command/args rules", () => {
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
  it("env: defaults, image env, the spec's env overriding by key", async () => {
    const { spec: oci } = await generateSpec(
      input({
        spec: spec({
          env: [
            { key: 'LANG', value: 'en_US.UTF-8' },
            { key: 'FOO', value: 'a=b' },
          ],
        }),
      }),
    );
    assert.deepEqual(oci.process.env, ['PATH=/bin:/usr/bin', 'HOSTNAME=web-0', 'LANG=en_US.UTF-8', 'FOO=a=b', 'HOME=/root']);
  });

  it('env: PATH default when the image has none, TERM for a tty, HOME from passwd', async () => {
    const { spec: oci, tty } = await generateSpec(input({ spec: spec({ ...asUser({ runAsUser: 1000 }), tty: true }), imageConfig: image({ env: null }) }));
    assert.deepEqual(oci.process.env, [`PATH=${DEFAULT_PATH_ENV}`, 'HOSTNAME=web-0', 'TERM=xterm', 'HOME=/home/app']);
    assert.equal(oci.process.terminal, true);
    assert.equal(tty, true);
  });

  it("cwd: the spec's working dir, else image WorkingDir, else /", async () => {
    assert.equal((await generateSpec(input({ spec: spec({ workingDir: '/w' }), imageConfig: image({ workingDir: '/img' }) }))).spec.process.cwd, '/w');
    assert.equal((await generateSpec(input({ imageConfig: image({ workingDir: '/img' }) }))).spec.process.cwd, '/img');
    assert.equal((await generateSpec(input({ imageConfig: image({ workingDir: 'rel/dir/' }) }))).spec.process.cwd, '/rel/dir/');
    assert.equal((await generateSpec(input())).spec.process.cwd, '/');
  });

  it('args, stdin flags and the no-command error through generateSpec', async () => {
    const r = await generateSpec(input({ spec: spec({ args: ['-c', 'echo hi'], stdin: true, stdinOnce: true }), imageConfig: image({ entrypoint: ['/bin/sh'] }) }));
    assert.deepEqual(r.spec.process.args, ['/bin/sh', '-c', 'echo hi']);
    assert.deepEqual([r.stdin, r.stdinOnce, r.tty], [true, true, false]);
    await assert.rejects(generateSpec(input({ imageConfig: image({ cmd: null }) })), invalid(/no command specified/));
  });

  it('user from the image and from the spec', async () => {
    const a = await generateSpec(input({ imageConfig: image({ user: 'app' }) }));
    assert.deepEqual(a.spec.process.user, { uid: 1000, gid: 1000, additionalGids: [1000, 10] });
    const b = await generateSpec(input({ spec: spec(asUser({ runAsUser: 1234, runAsGroup: 55, supplementalGroups: [7] })) }));
    assert.deepEqual(b.spec.process.user, { uid: 1234, gid: 55, additionalGids: [55, 7] });
    const strict = await generateSpec(input({ spec: spec(asUser({ runAsUsername: 'app', supplementalGroupsPolicy: 'Strict' })) }));
    assert.deepEqual(strict.spec.process.user, { uid: 1000, gid: 1000, additionalGids: [1000] });
    await assert.rejects(generateSpec(input({ imageConfig: image({ user: 'ghost' }) })), invalid(/user "ghost" not found/));
  });

  it("stop signal: the spec's, else the image StopSignal, else SIGTERM", async () => {
    assert.deepEqual((await generateSpec(input())).stopSignal, { name: 'SIGTERM', number: 15 });
    assert.deepEqual((await generateSpec(input({ imageConfig: image({ stopSignal: 'SIGQUIT' }) }))).stopSignal, { name: 'SIGQUIT', number: 3 });
    assert.deepEqual((await generateSpec(input({ imageConfig: image({ stopSignal: '10' }) }))).stopSignal, { name: 'SIGUSR1', number: 10 });
    assert.deepEqual((await generateSpec(input({ imageConfig: image({ stopSignal: 'rtmin+3' }) }))).stopSignal, { name: 'SIGRTMIN+3', number: 37 });
    assert.deepEqual((await generateSpec(input({ spec: spec({ stopSignal: { name: 'SIGINT', number: 2 } }), imageConfig: image({ stopSignal: 'SIGQUIT' }) }))).stopSignal, {
      name: 'SIGINT',
      number: 2,
    });
    await assert.rejects(generateSpec(input({ imageConfig: image({ stopSignal: 'SIGNOPE' }) })), invalid(/image stop signal "SIGNOPE"/));
  });
});

describe('generateSpec: security', () => {
  it('root gets the default capabilities; a non-root user has none effective', async () => {
    const root = (await generateSpec(input())).spec.process.capabilities;
    assert.equal(root.bounding.length, DEFAULT_CAPABILITIES.length);
    assert.deepEqual(root.effective, root.bounding);
    const user = (await generateSpec(input({ spec: spec({ ...asUser({ runAsUser: 1000 }), capabilities: { add: ['NET_RAW'], drop: ['KILL'], ambient: [] } }) }))).spec.process
      .capabilities;
    assert.ok(user.bounding.includes('CAP_NET_RAW') && !user.bounding.includes('CAP_KILL'));
    assert.deepEqual([user.effective, user.permitted], [[], []]);
  });

  it("masked and readonly paths: kubelet defaults, or the spec's lists", async () => {
    const d = (await generateSpec(input())).spec.linux;
    assert.deepEqual(d.maskedPaths, DEFAULT_MASKED_PATHS);
    assert.deepEqual(d.readonlyPaths, DEFAULT_READONLY_PATHS);
    const c = (await generateSpec(input({ spec: spec({ maskedPaths: ['/proc/x'], readonlyPaths: ['/proc/y'] }) }))).spec.linux;
    assert.deepEqual([c.maskedPaths, c.readonlyPaths], [['/proc/x'], ['/proc/y']]);
  });

  it('no_new_privs and readonly rootfs', async () => {
    const { spec: oci } = await generateSpec(input({ spec: spec({ noNewPrivileges: true, readonlyRootfs: true }) }));
    assert.equal(oci.process.noNewPrivileges, true);
    assert.deepEqual(oci.root, { path: rootfs, readonly: true });
    for (const f of ['/etc/hostname', '/etc/hosts', '/etc/resolv.conf']) {
      assert.ok(oci.mounts.find((m) => m.destination === f)?.options.includes('ro'), f);
    }
    assert.equal((await generateSpec(input())).spec.root.readonly, false);
  });

  it('privileged: every capability, no seccomp, no masks, writable sysfs, every device allowed', async () => {
    const privSandbox = { ...sandbox, spec: { ...sandbox.spec, privileged: true } };
    const { spec: oci } = await generateSpec(input({ sandbox: privSandbox, spec: spec({ privileged: true, seccomp: { kind: 'runtime-default' } }) }));
    assert.equal(oci.process.capabilities.bounding.length, 41);
    assert.equal(oci.linux.seccomp, undefined);
    assert.deepEqual([oci.linux.maskedPaths, oci.linux.readonlyPaths], [[], []]);
    assert.ok(oci.mounts.find((m) => m.destination === '/sys')?.options.includes('rw'));
    assert.ok(oci.mounts.find((m) => m.destination === '/sys/fs/cgroup')?.options.includes('rw'));
    assert.deepEqual(oci.linux.resources.devices, [{ allow: true, access: 'rwm' }]);
    await assert.rejects(generateSpec(input({ spec: spec({ privileged: true }) })), invalid(/sandbox sb0123456789 is not privileged/));
  });

  it('seccomp: unconfined gives none, RuntimeDefault the default profile', async () => {
    assert.equal((await generateSpec(input())).spec.linux.seccomp, undefined);
    const s = (await generateSpec(input({ spec: spec({ seccomp: { kind: 'runtime-default' } }) }))).spec.linux.seccomp;
    assert.ok(s);
    assert.equal(s.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(s.defaultErrnoRet, 1);
    const allowed = allowedNames(s);
    for (const denied of ['unshare', 'mount', 'setns', 'keyctl', 'bpf']) assert.ok(!allowed.has(denied), denied);
    for (const ok of ['read', 'execve', 'openat', 'exit_group']) assert.ok(allowed.has(ok), ok);
  });

  it('seccomp: RuntimeDefault follows the capabilities (CAP_SYS_ADMIN lifts the mount and namespace refusals)', async () => {
    const s = (await generateSpec(input({ spec: spec({ seccomp: { kind: 'runtime-default' }, capabilities: { add: ['SYS_ADMIN'], drop: [], ambient: [] } }) }))).spec.linux
      .seccomp!;
    const allowed = allowedNames(s);
    for (const n of ['unshare', 'mount', 'setns', 'clone', 'clone3']) assert.ok(allowed.has(n), n);
    assert.ok(!allowed.has('keyctl'));
  });

  it('seccomp: Localhost reads the profile; a missing one is an error naming it', async () => {
    const file = path.join(dir, 'profile.json');
    const field = 'linux.security_context.seccomp.localhost_ref';
    await fsp.writeFile(file, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['sethostname'], action: 'SCMP_ACT_ERRNO' }] }));
    const s = (await generateSpec(input({ spec: spec({ seccomp: { kind: 'localhost', path: file, field } }) }))).spec.linux.seccomp;
    assert.deepEqual(s, { defaultAction: 'SCMP_ACT_ALLOW', architectures: [], syscalls: [{ names: ['sethostname'], action: 'SCMP_ACT_ERRNO' }] });
    const missing = path.join(dir, 'missing.json');
    await assert.rejects(
      generateSpec(input({ spec: spec({ seccomp: { kind: 'localhost', path: missing, field } }) })),
      invalid(new RegExp(`^${field}: seccomp profile ${missing} does not exist`)),
    );
  });
});

describe('generateSpec: mounts', () => {
  it("defaults, pod files, then the spec's mounts sorted by depth", async () => {
    const { spec: oci } = await generateSpec(
      input({
        spec: spec({
          mounts: [
            mount({ containerPath: '/data/sub', hostPath: path.join(hostDir, 'data/sub') }),
            mount({ containerPath: '/data', hostPath: path.join(hostDir, 'link'), readonly: true }),
          ],
        }),
      }),
    );
    assert.deepEqual(
      oci.mounts.map((m) => m.destination),
      ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/data', '/data/sub'],
    );
    const byDest = new Map(oci.mounts.map((m) => [m.destination, m]));
    assert.deepEqual(byDest.get('/dev')?.options, ['nosuid', 'strictatime', 'mode=755', 'size=65536k']);
    assert.deepEqual(byDest.get('/dev/pts')?.options, ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']);
    assert.equal(byDest.get('/dev/shm')?.source, sandbox.shm.path);
    assert.ok(byDest.get('/sys')?.options.includes('ro'));
    assert.equal(byDest.get('/etc/hosts')?.source, sandbox.files.hosts);
    // the symlinked host path is resolved; readonly becomes ro
    assert.deepEqual(byDest.get('/data'), { destination: '/data', type: 'bind', source: path.join(hostDir, 'data'), options: ['rbind', 'rprivate', 'ro'] });
    assert.deepEqual(byDest.get('/data/sub')?.options, ['rbind', 'rprivate', 'rw']);
    assert.equal(oci.linux.rootfsPropagation, 'rslave');
  });

  it("a mount at /etc/hosts replaces the pod's; host IPC uses the host /dev/shm", async () => {
    const hosts = path.join(hostDir, 'hosts');
    await fsp.writeFile(hosts, '127.0.0.1 localhost\n');
    const { spec: oci } = await generateSpec(
      input({ spec: spec({ mounts: [mount({ containerPath: '/etc/hosts', hostPath: hosts })], namespaces: { network: 'POD', pid: 'CONTAINER', ipc: 'NODE', targetId: '' } }) }),
    );
    const all = oci.mounts.filter((m) => m.destination === '/etc/hosts');
    assert.equal(all.length, 1);
    assert.equal(all[0]!.source, hosts);
    assert.equal(oci.mounts.find((m) => m.destination === '/dev/shm')?.source, '/dev/shm');
    assert.ok(!oci.linux.namespaces.some((n) => n.type === 'ipc'));
  });

  it('a missing host path is an invalid argument naming it; so is a second mount at one place', async () => {
    const missing = path.join(hostDir, 'nope');
    await assert.rejects(
      generateSpec(input({ spec: spec({ mounts: [mount({ containerPath: '/x', hostPath: missing })] }) })),
      invalid(new RegExp(`mounts\\[0\\]: host path ${missing} does not exist`)),
    );
    const twice = [mount({ containerPath: '/x', hostPath: hostDir }), mount({ containerPath: '/x/', hostPath: hostDir })];
    await assert.rejects(generateSpec(input({ spec: spec({ mounts: twice }) })), invalid(/mounts\[1\]: more than one mount at \/x/));
  });

  it('propagation: rslave and rshared need a slave or shared host mount, and raise the rootfs propagation', async () => {
    const src = path.join(hostDir, 'data');
    const info = (opt: string) => `22 1 8:1 / / rw,relatime ${opt} - ext4 /dev/sda1 rw\n`;
    const gen = (propagation: ContainerMount['propagation'], mountInfo: string) =>
      generateSpec(input({ mountInfo, spec: spec({ mounts: [mount({ containerPath: '/m', hostPath: src, propagation })] }) }));

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

  it('recursive read-only becomes rro; image volumes not mounted are reported', async () => {
    const src = path.join(hostDir, 'data');
    const r = await generateSpec(
      input({
        spec: spec({ mounts: [mount({ containerPath: '/v1', hostPath: src, readonly: true, recursiveReadOnly: true })] }),
        imageConfig: image({ volumes: ['/v1', '/v2/', 'v3'] }),
      }),
    );
    assert.deepEqual(r.spec.mounts.at(-1)?.options, ['rbind', 'rprivate', 'ro', 'rro']);
    assert.deepEqual(r.uncoveredVolumes, ['/v2', '/v3']);
  });
});

describe('generateSpec: linux', () => {
  it('namespaces by mode', async () => {
    const ns = async (o: Partial<ContainerSpec['namespaces']>, extra: Partial<GenerateInput> = {}) =>
      (await generateSpec(input({ spec: spec({ namespaces: { ...spec().namespaces, ...o } }), ...extra }))).spec.linux.namespaces;
    const run = sandbox.runDir;
    assert.deepEqual(await ns({}), [
      { type: 'pid' },
      { type: 'network', path: `${run}/ns/net` },
      { type: 'ipc', path: `${run}/ns/ipc` },
      { type: 'uts', path: `${run}/ns/uts` },
      { type: 'mount' },
    ]);
    assert.deepEqual(await ns({ pid: 'POD' }, { podPidNamespace: '/proc/42/ns/pid' }).then((l) => l[0]), { type: 'pid', path: '/proc/42/ns/pid' });
    assert.deepEqual(await ns({ pid: 'TARGET', targetId: 'abc' }, { targetPid: 77 }).then((l) => l[0]), { type: 'pid', path: '/proc/77/ns/pid' });
    assert.deepEqual(
      (await ns({ pid: 'NODE', network: 'NODE', ipc: 'NODE' })).map((n) => n.type),
      ['uts', 'mount'],
    );
    // POD in a pod made without a shared PID namespace: the container gets its own.
    assert.deepEqual(await ns({ pid: 'POD' }).then((l) => l[0]), { type: 'pid' });
    await assert.rejects(ns({ pid: 'TARGET', targetId: 'abc' }), /target container "abc" has no running process/);

    // A pod on the host network has no uts pin: no uts namespace and no hostname.
    const hostNet = { ...sandbox, pins: { ...sandbox.pins, net: null, uts: null } };
    const r = await generateSpec(input({ sandbox: hostNet }));
    assert.deepEqual(
      r.spec.linux.namespaces.map((n) => n.type),
      ['pid', 'ipc', 'mount'],
    );
    assert.equal(r.spec.hostname, undefined);
    assert.equal((await generateSpec(input())).spec.hostname, 'web-0');
    const cg = await generateSpec(input({ defaults: { ...defaultRuntimeDefaults(), cgroupNamespace: true } }));
    assert.deepEqual(cg.spec.linux.namespaces.at(-1), { type: 'cgroup' });
  });

  it('resources, oom_score_adj, pids limit and cgroups path', async () => {
    const res = {
      ...noResources(),
      cpuPeriod: 100000,
      cpuQuota: 50000,
      cpuShares: 512,
      memoryLimitBytes: 16777216n,
      memorySwapLimitBytes: 16777216n,
      cpusetCpus: '0-1',
      hugepageLimits: [{ pageSize: '2MB', limit: 4194304n }],
      unified: { 'memory.high': '8388608' },
    };
    const r = await generateSpec(input({ spec: spec({ resources: res, oomScoreAdj: -997 }), defaults: { ...defaultRuntimeDefaults(), pidsLimit: 1024 } }));
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
  });

  it("devices: the default nodes, then the spec's, stat'ed for type and numbers; missing is an error", async () => {
    const defaults = (await generateSpec(input())).spec.linux.devices;
    assert.deepEqual(defaults, [
      { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
      { path: '/dev/zero', type: 'c', major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0 },
      { path: '/dev/full', type: 'c', major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0 },
      { path: '/dev/random', type: 'c', major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0 },
      { path: '/dev/urandom', type: 'c', major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0 },
      { path: '/dev/tty', type: 'c', major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0 },
    ]);
    const r = await generateSpec(input({ spec: spec({ devices: [{ hostPath: '/dev/null', containerPath: '/dev/xnull', permissions: 'rw' }] }) }));
    assert.deepEqual(r.spec.linux.devices.slice(0, -1), defaults);
    assert.deepEqual(
      { ...r.spec.linux.devices.at(-1), fileMode: undefined, uid: undefined, gid: undefined },
      { path: '/dev/xnull', type: 'c', major: 1, minor: 3, fileMode: undefined, uid: undefined, gid: undefined },
    );
    assert.deepEqual(r.spec.linux.resources.devices.at(-1), { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' });
    // A device asked for at a default's path replaces the default node.
    const over = await generateSpec(input({ spec: spec({ devices: [{ hostPath: '/dev/zero', containerPath: '/dev/null', permissions: 'rwm' }] }) }));
    assert.deepEqual(
      over.spec.linux.devices.filter((d) => d.path === '/dev/null').map((d) => d.minor),
      [5],
    );
    assert.equal(over.spec.linux.devices.length, defaults.length);
    await assert.rejects(
      generateSpec(input({ spec: spec({ devices: [{ hostPath: '/dev/nodecri-none', containerPath: '/dev/x', permissions: 'rwm' }] }) })),
      invalid(/devices\[0\]: device \/dev\/nodecri-none does not exist/),
    );
    await assert.rejects(
      generateSpec(input({ spec: spec({ devices: [{ hostPath: hostDir + '/hosts', containerPath: '/dev/x', permissions: 'rwm' }] }) })),
      invalid(/is not a device/),
    );
  });

  it('the device rules of config.json are the ones handed to the cgroup manager', async () => {
    const r = await generateSpec(input({ spec: spec({ devices: [{ hostPath: '/dev/null', containerPath: '/dev/xnull', permissions: 'rw' }] }) }));
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
    const priv = await generateSpec(input({ sandbox: privSandbox, spec: spec({ privileged: true }) }));
    assert.deepEqual(priv.resources.devices, [{ allow: true, type: 'a', major: null, minor: null, access: 'rwm' }]);
  });

  it("annotations: the spec's, then ours (which cannot be overridden)", async () => {
    const r = await generateSpec(input({ spec: spec({ annotations: { a: 'b', 'io.kubernetes.cri.sandbox-id': 'spoof' } }) }));
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

  it('bad input: id, rootfs, log path', async () => {
    await assert.rejects(generateSpec(input({ containerId: '../x' })), invalid(/container id/));
    await assert.rejects(generateSpec(input({ rootfs: 'rel' })), invalid(/rootfs "rel"/));
    await assert.rejects(generateSpec(input({ logPath: 'app/0.log' })), invalid(/log path "app\/0.log" must be absolute/));
  });

  it('the spec is plain JSON', async () => {
    const { spec: oci } = await generateSpec(input({ spec: spec({ seccomp: { kind: 'runtime-default' } }) }));
    assert.deepEqual(JSON.parse(JSON.stringify(oci)), oci);
  });
});
