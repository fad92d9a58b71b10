/**
 * Device access is enforced, not only written in config.json. A hostile image ships a block
 * node of a loop device (set up here over a file that starts with a marker) and a char node
 * of a device the host can read (the hwrng, 10:183, which the default rules do not allow);
 * an unprivileged container with CAP_MKNOD also makes a node of its own. Every read fails
 * with EPERM through the v1 devices cgroup alone, and through the cgroup2 BPF device program
 * alone (cgroup.device_enforcement picks one); a privileged container reads both;
 * UpdateContainerResources keeps the rules; bad rules and a refused rule fail cleanly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';
import { podConfig } from '../helpers/pods';
import { importImage, withPodEnv, type PodEnv } from '../helpers/pod-env';
import { makeTempDir } from '../helpers/daemon';
import { devMajorMinor } from '../../src/oci/devices';
import { CgroupConfigError, createCgroupManager, noResources } from '../../src/linux/cgroups';
import { cgroupDeviceFilter, cgroupDevicePrograms } from '../../src/native/cgroups';
import { SyscallError } from '../../src/native/errors';
import { mountTable } from '../helpers/mountinfo';

const TIMEOUT = { timeout: 180_000 };
const hostileRef = 'docker.io/library/hostile-devices:test';
const V1_DEVICES = '/sys/fs/cgroup/devices';

/** The cgroup2 mount beside (hybrid) or instead of (v2) the v1 hierarchies. */
function unifiedMount(): string | null {
  return mountTable().find((m) => m.fstype === 'cgroup2')?.mountPoint ?? null;
}
const unified = unifiedMount();
const hasV1Devices = fs.existsSync(path.join(V1_DEVICES, 'devices.list'));
const hasHwrng = (() => {
  try {
    return fs.statSync('/dev/hwrng').isCharacterDevice();
  } catch {
    return false;
  }
})();
const skip = !hasHwrng ? 'no /dev/hwrng on this host' : false;

interface Loop {
  dev: string;
  major: number;
  minor: number;
  marker: string;
}

/** A loop device over a file in a temp dir that starts with a marker; always detached. */
async function withLoopDevice(body: (loop: Loop) => Promise<void>): Promise<void> {
  const dir = makeTempDir('nodecri-devices-');
  const marker = `nodecri-device-marker-${randomBytes(6).toString('hex')}`;
  const file = path.join(dir, 'disk.img');
  const data = Buffer.alloc(1 << 20);
  data.write(marker, 0);
  fs.writeFileSync(file, data);
  let dev: string | null = null;
  try {
    dev = execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim();
    const st = fs.statSync(dev, { bigint: true });
    assert.ok(st.isBlockDevice(), `${dev} is a block device`);
    await body({ dev, ...devMajorMinor(st.rdev), marker });
  } finally {
    if (dev !== null) execFileSync('losetup', ['-d', dev]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** busybox plus a layer with the two nodes, as a hostile image would ship them. */
function importHostileImage(env: PodEnv, loop: Loop): void {
  const hwrng = devMajorMinor(fs.statSync('/dev/hwrng', { bigint: true }).rdev);
  importImage(env, hostileRef, [
    [
      { name: 'hostile/', type: 'directory', mode: 0o755 },
      { name: 'hostile/disk', type: 'block', mode: 0o600, devmajor: loop.major, devminor: loop.minor },
      { name: 'hostile/rng', type: 'char', mode: 0o600, devmajor: hwrng.major, devminor: hwrng.minor },
    ],
  ]);
}

type Pod = { sandboxId: string; sandboxConfig: object };

async function runPod(env: PodEnv, privileged: boolean): Promise<Pod> {
  const pod = podConfig();
  const config = {
    ...pod,
    log_directory: path.join(env.logDir, pod.metadata.uid),
    linux: { ...pod.linux, security_context: { ...pod.linux.security_context, privileged } },
  };
  const { pod_sandbox_id } = await env.client.call('RunPodSandbox', { config });
  return { sandboxId: pod_sandbox_id, sandboxConfig: config };
}

function createRequest(pod: Pod, name: string, privileged: boolean) {
  return {
    pod_sandbox_id: pod.sandboxId,
    sandbox_config: pod.sandboxConfig,
    config: {
      metadata: { name, attempt: 0 },
      image: { image: hostileRef },
      command: ['sleep', '3600'],
      log_path: `${name}.log`,
      // CAP_MKNOD (containerd's default set has it) so that a node made in the container
      // is refused by the device rules, not by the capability.
      linux: { security_context: { privileged, capabilities: { add_capabilities: privileged ? [] : ['MKNOD'] } } },
    },
  };
}

interface Running {
  id: string;
  cgroupPath: string;
}

async function startSleeper(env: PodEnv, pod: Pod, name: string, privileged: boolean): Promise<Running> {
  const { container_id } = await env.client.call('CreateContainer', createRequest(pod, name, privileged));
  await env.client.call('StartContainer', { container_id });
  const st = await env.client.call('ContainerStatus', { container_id, verbose: true });
  return { id: container_id, cgroupPath: (JSON.parse(st.info.info) as { cgroupPath: string }).cgroupPath };
}

async function exec(env: PodEnv, id: string, script: string): Promise<{ code: number; out: string; err: string }> {
  const r = await env.client.call('ExecSync', { container_id: id, cmd: ['sh', '-c', script], timeout: '10' });
  return { code: r.exit_code, out: r.stdout.toString(), err: r.stderr.toString() };
}

/** Reads both shipped nodes, and one made with mknod, from the container. */
async function readNodes(env: PodEnv, id: string, loop: Loop) {
  return {
    disk: await exec(env, id, 'head -c 64 /hostile/disk'),
    rng: await exec(env, id, 'rm -f /tmp/rng; dd if=/hostile/rng of=/tmp/rng bs=16 count=1 && wc -c < /tmp/rng'),
    mknod: await exec(env, id, `rm -f /tmp/disk2; mknod /tmp/disk2 b ${loop.major} ${loop.minor} && head -c 64 /tmp/disk2`),
  };
}

function assertDenied(r: Awaited<ReturnType<typeof readNodes>>, loop: Loop): void {
  const wrong = Object.entries(r).filter(([, x]) => x.code === 0 || !/Operation not permitted/.test(x.err) || x.out.includes(loop.marker));
  assert.deepEqual(wrong, [], 'every read fails with EPERM and shows no marker');
}

function v1DevicesList(cgroupPath: string): string[] {
  return fs
    .readFileSync(path.join(V1_DEVICES, cgroupPath, 'devices.list'), 'utf8')
    .trim()
    .split('\n')
    .sort();
}

/** The default rules as the v1 devices cgroup lists them (src/oci/devices.ts). */
const DEFAULT_V1_LIST = ['b *:* m', 'c *:* m', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:1 rwm', 'c 5:2 rwm', 'c 136:* rwm'].sort();

/** BPF program fds the daemon holds: none may stay open after an attach. */
function daemonBpfFds(env: PodEnv): string[] {
  const dir = `/proc/${env.daemon.workerPid}/fd`;
  return fs
    .readdirSync(dir)
    .map((fd) => {
      try {
        return fs.readlinkSync(path.join(dir, fd));
      } catch {
        return '';
      }
    })
    .filter((l) => l.startsWith('anon_inode:bpf'));
}

const dropIn = (mode: string) => ({ '50-devices.toml': `[cgroup]\ndevice_enforcement = "${mode}"\n` });

test(
  'the v1 devices cgroup alone refuses the nodes an image ships; a rule the parent refuses fails CreateContainer cleanly',
  { ...TIMEOUT, skip: skip || (!hasV1Devices && 'no v1 devices controller') },
  async () => {
    await withLoopDevice(async (loop) => {
      await withPodEnv({ removePods: true, dropIns: dropIn('v1') }, async (env) => {
        importHostileImage(env, loop);
        const pod = await runPod(env, false);
        const c = await startSleeper(env, pod, 'hostile', false);
        assertDenied(await readNodes(env, c.id, loop), loop);
        assert.deepEqual(v1DevicesList(c.cgroupPath), DEFAULT_V1_LIST);
        if (unified !== null) assert.deepEqual(await cgroupDevicePrograms(path.join(unified, c.cgroupPath)), [], 'no BPF program: v1 alone');
        await env.client.call('RemoveContainer', { container_id: c.id });

        // The pod's devices cgroup now refuses mknod of char devices, so the container's
        // first devices.allow ("c *:* m") is refused by the kernel: a clear error, and the
        // leak check proves nothing stays.
        const podCgroup = path.posix.dirname(c.cgroupPath);
        fs.writeFileSync(path.join(V1_DEVICES, podCgroup, 'devices.deny'), 'c *:* m');
        await assert.rejects(env.client.call('CreateContainer', createRequest(pod, 'refused', false)), (e: ServiceError) => {
          assert.equal(e.code, Status.UNKNOWN);
          assert.match(e.details, /write cgroup file: write \/sys\/fs\/cgroup\/devices\/.*\/devices\.allow: Operation not permitted/);
          return true;
        });
        assert.deepEqual((await env.client.call('ListContainers', {})).containers, []);
      });
    });
  },
);

test(
  'the cgroup2 BPF device program alone refuses the nodes an image ships, and no fd stays open',
  { ...TIMEOUT, skip: skip || (unified === null && 'no cgroup2 mount') },
  async () => {
    await withLoopDevice(async (loop) => {
      await withPodEnv({ removePods: true, dropIns: dropIn('bpf') }, async (env) => {
        importHostileImage(env, loop);
        const pod = await runPod(env, false);
        const c = await startSleeper(env, pod, 'hostile', false);
        assertDenied(await readNodes(env, c.id, loop), loop);
        // Alone: the container has no v1 devices cgroup (its tasks stay in the daemon's,
        // which allows everything), and exactly one program on its cgroup2 dir.
        assert.equal(fs.existsSync(path.join(V1_DEVICES, c.cgroupPath)), false);
        assert.equal((await cgroupDevicePrograms(path.join(unified as string, c.cgroupPath))).length, 1);
        // The pod's own cgroup has none: only containers are filtered.
        assert.deepEqual(await cgroupDevicePrograms(path.join(unified as string, path.posix.dirname(c.cgroupPath))), []);
        assert.deepEqual(daemonBpfFds(env), []);
        // /dev/null and the like (the default allow list) still work.
        assert.equal((await exec(env, c.id, 'echo x > /dev/null && head -c 4 /dev/zero | wc -c')).out.trim(), '4');
      });
    });
  },
);

test('both on a hybrid host by default: a privileged container reads the nodes; UpdateContainerResources keeps the rules', { ...TIMEOUT, skip }, async () => {
  await withLoopDevice(async (loop) => {
    await withPodEnv({ removePods: true }, async (env) => {
      importHostileImage(env, loop);
      const pod = await runPod(env, true);
      const plain = await startSleeper(env, pod, 'plain', false);
      const priv = await startSleeper(env, pod, 'priv', true);

      assertDenied(await readNodes(env, plain.id, loop), loop);
      const p = await readNodes(env, priv.id, loop);
      assert.equal(p.disk.code, 0, JSON.stringify(p.disk));
      assert.ok(p.disk.out.startsWith(loop.marker), 'the privileged container reads the marker');
      assert.equal(p.rng.out.trim(), '16', JSON.stringify(p.rng));

      const programs = unified === null ? null : path.join(unified, plain.cgroupPath);
      const before = {
        list: hasV1Devices ? v1DevicesList(plain.cgroupPath) : null,
        programs: programs === null ? null : await cgroupDevicePrograms(programs),
      };
      if (hasV1Devices) {
        assert.deepEqual(before.list, DEFAULT_V1_LIST);
        assert.deepEqual(v1DevicesList(priv.cgroupPath), ['a *:* rwm']);
      }
      if (before.programs !== null) assert.equal(before.programs.length, 1);

      await env.client.call('UpdateContainerResources', { container_id: plain.id, linux: { cpu_shares: '256', memory_limit_in_bytes: String(64 << 20) } });
      assert.deepEqual(
        {
          list: hasV1Devices ? v1DevicesList(plain.cgroupPath) : null,
          programs: programs === null ? null : await cgroupDevicePrograms(programs),
        },
        before,
        'the same rules and the same program after the update',
      );
      assertDenied(await readNodes(env, plain.id, loop), loop);
      assert.deepEqual(daemonBpfFds(env), []);

      for (const c of [plain, priv]) await env.client.call('RemoveContainer', { container_id: c.id });
      // The program went with the cgroup it was attached to.
      if (programs !== null) assert.equal(fs.existsSync(programs), false);
      assert.deepEqual(daemonBpfFds(env), []);
    });
  });
});

test(
  'bad device rules are refused before anything is made; the addon refuses what it cannot express',
  { timeout: 60_000, skip: process.getuid?.() !== 0 ? 'needs root' : false },
  async () => {
    const { manager } = await createCgroupManager();
    const parent = `/nodecri-test-devices-${randomBytes(4).toString('hex')}`;
    // The parent in every hierarchy (or the one, on v2): none may exist after a refusal.
    const made = () => [...new Set(Object.values(manager.paths(parent)))].filter((d) => fs.existsSync(d));
    try {
      const deny = { allow: false, type: 'a', major: null, minor: null, access: 'rwm' } as const;
      await assert.rejects(
        manager.create(`${parent}/c`, { ...noResources(), devices: [deny, { allow: true, type: 'c', major: 5000, minor: null, access: 'r' }] }),
        (e: unknown) => e instanceof CgroupConfigError && /device rule 1 .*major must be null \(any\) or an integer in 0\.\.4095/.test((e as Error).message),
      );
      await assert.rejects(manager.create(`${parent}/c`, { ...noResources(), devices: [{ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }] }), CgroupConfigError);
      assert.deepEqual(made(), [], 'no cgroup dir was made');

      if (unified !== null) {
        // Below the manager's checks: the addon says EINVAL, names the cgroup and attaches nothing.
        const dir = path.join(unified, parent);
        fs.mkdirSync(dir);
        try {
          await assert.rejects(cgroupDeviceFilter(dir, [deny, { allow: true, type: 'c', major: 1, minor: 1 << 20, access: 'r' }]), (e: unknown) => {
            assert.ok(e instanceof SyscallError);
            assert.deepEqual([e.code, e.syscall, e.step, e.path], ['EINVAL', 'bpf', 'build device program', dir]);
            return true;
          });
          assert.deepEqual(await cgroupDevicePrograms(dir), []);
          // And a dir that is not on cgroup2 is refused before anything is loaded.
          await assert.rejects(cgroupDeviceFilter('/tmp', [deny]), (e: unknown) => e instanceof SyscallError && e.code === 'EINVAL' && e.step === 'attach device program');
        } finally {
          fs.rmdirSync(dir);
        }
      }
    } finally {
      await manager.remove(parent).catch(() => {});
    }
  },
);
