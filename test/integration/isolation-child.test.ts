/**
 * What the container child does on the host's behalf, adversarially, through the gRPC API
 * (root, real kernel, busybox images): mount propagation never reaches the host, seccomp
 * is the last step before execve, mounts are made on the mount itself, masks use the
 * runtime's /dev/null, the pty comes from the container's own devpts, and ids that mean
 * "unchanged" to the kernel are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { podConfig } from '../helpers/pods';
import { SyscallError } from '../../src/native/errors';
import { baseProcessSpec, createProcess, releaseProcess, signalProcess, type ProcessSpec } from '../../src/native/process';
import { defaultDev, defaultMounts } from '../helpers/process-defaults';
import { withoutLeaks } from '../helpers/leaks';
import { buildRootfs, makeTempDir } from '../helpers/rootfs';
import { busyboxRef, withPodEnv, type PodEnv } from '../helpers/pod-env';
import { createContainer, runPod, waitExited, type Pod, type RunOpts } from '../helpers/containers';
import { mountTable } from '../helpers/mountinfo';

function privilegedPod(): { metadata: { uid: string } } {
  const p = podConfig();
  const privileged = { ...p, linux: { ...p.linux, security_context: { ...p.linux.security_context, privileged: true } } };
  return privileged;
}

/** The text of every record of a CRI log, joined by newlines. */
function logText(file: string): string {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => /^\S+ (?:stdout|stderr) [PF] ?([^]*)$/.exec(l)?.[1]?.replace(/\r$/, '') ?? `?${l}`)
    .join('\n');
}

async function run(env: PodEnv, pod: Pod, name: string, o: RunOpts): Promise<{ out: string; code: number; reason: string; message: string }> {
  const id = await createContainer(env, pod, name, o);
  await env.client.call('StartContainer', { container_id: id });
  const st = await waitExited(env, id);
  return { out: logText(st.log_path).trim(), code: st.exit_code, reason: st.reason, message: st.message };
}

async function exec(env: PodEnv, id: string, cmd: string): Promise<string> {
  const r = await env.client.call('ExecSync', { container_id: id, cmd: ['sh', '-c', cmd], timeout: '30' });
  return `${r.stdout.toString()}${r.stderr.toString()}`.trim();
}

/** The host's mount points (decoded), from this process's mountinfo. */
function hostMounts(): string[] {
  return mountTable().map((m) => m.mountPoint);
}

const sh = (...args: string[]) => execFileSync(args[0]!, args.slice(1), { stdio: 'pipe' });

/** Unmounts everything at and below each dir on the host (deepest first); ignores what is gone. */
function unmountAll(dirs: string[]): void {
  const mine = hostMounts()
    .filter((m) => dirs.some((d) => m === d || m.startsWith(`${d}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mine) {
    try {
      sh('umount', '-l', m);
    } catch {
      // already gone
    }
  }
}

test('a Bidirectional mount of a shared host dir: the host loses no mount, and mounts still propagate both ways', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    // A shared tmpfs with a leaf mount inside (what the container binds), and a second
    // shared tree elsewhere with its own leaf (kubelet's secret tmpfs under a shared parent).
    const shared = path.join(env.dir, 'shared');
    const leaf = path.join(shared, 'leaf');
    const other = path.join(env.dir, 'other');
    const otherLeaf = path.join(other, 'leaf');
    const dirs = [shared, other];
    try {
      for (const [dir, sub] of [
        [shared, leaf],
        [other, otherLeaf],
      ] as const) {
        fs.mkdirSync(dir);
        sh('mount', '-t', 'tmpfs', 'tmpfs', dir);
        sh('mount', '--make-shared', dir);
        fs.mkdirSync(sub);
        sh('mount', '-t', 'tmpfs', 'tmpfs', sub);
        fs.writeFileSync(path.join(sub, 'marker'), sub);
      }
      const watched = () =>
        hostMounts()
          .filter((m) => m.startsWith(`${env.dir}/`))
          .sort();
      const before = watched();
      assert.ok(before.includes(leaf) && before.includes(otherLeaf), `set up: ${before.join(' ')}`);

      const pod = await runPod(env, privilegedPod());
      const id = await createContainer(env, pod, 'bidi', {
        command: ['sleep', '600'],
        mounts: [{ container_path: '/shared', host_path: shared, propagation: 'PROPAGATION_BIDIRECTIONAL' }],
        linux: { security_context: { privileged: true } },
      });
      await env.client.call('StartContainer', { container_id: id });
      const during = watched();
      for (const m of before) assert.ok(during.includes(m), `host mount ${m} is still there while the container runs (have: ${during.join(' ')})`);
      assert.equal(fs.readFileSync(path.join(leaf, 'marker'), 'utf8'), leaf);
      assert.equal(await exec(env, id, 'cat /shared/leaf/marker'), leaf);

      // host → container
      const fromHost = path.join(shared, 'from-host');
      fs.mkdirSync(fromHost);
      sh('mount', '-t', 'tmpfs', 'tmpfs', fromHost);
      fs.writeFileSync(path.join(fromHost, 'hello'), 'host');
      assert.equal(await exec(env, id, 'cat /shared/from-host/hello'), 'host');
      // container → host
      assert.equal(await exec(env, id, 'mkdir /shared/from-ctr && mount -t tmpfs tmpfs /shared/from-ctr && echo ctr > /shared/from-ctr/hello && echo ok'), 'ok');
      assert.ok(hostMounts().includes(path.join(shared, 'from-ctr')), 'the container mount shows on the host');
      assert.equal(fs.readFileSync(path.join(shared, 'from-ctr', 'hello'), 'utf8'), 'ctr\n');

      await env.client.call('StopContainer', { container_id: id, timeout: '0' });
      await env.client.call('RemoveContainer', { container_id: id });
      await env.client.call('RemovePodSandbox', { pod_sandbox_id: pod.sandboxId });
      const after = watched();
      for (const m of before) assert.ok(after.includes(m), `host mount ${m} is still there after removal (have: ${after.join(' ')})`);
    } finally {
      unmountAll(dirs);
    }
  });
});

// What busybox's `echo hello` needs and nothing else (strace of the static busybox the
// test image carries; as a non-root user it also drops set-id privileges with
// getgid/setgid/setuid and stats a file): no close_range, sendto, recvfrom, setresuid,
// setgroups, capset, chdir... that only the runtime's setup makes.
const echoSyscalls = [
  'execve',
  'brk',
  'arch_prctl',
  'set_tid_address',
  'set_robust_list',
  'rseq',
  'prlimit64',
  'readlink',
  'getrandom',
  'mprotect',
  'prctl',
  'getuid',
  'getgid',
  'setuid',
  'setgid',
  'newfstatat',
  'write',
  'exit_group',
  'exit',
];

test("seccomp is the last step before execve: a kill-by-default profile with only the command's syscalls runs it", async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const profile = path.join(env.dir, 'echo-only.json');
    for (const defaultAction of ['SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL']) {
      fs.writeFileSync(profile, JSON.stringify({ defaultAction, syscalls: [{ names: echoSyscalls, action: 'SCMP_ACT_ALLOW' }] }));
      const seccomp = { profile_type: 'Localhost', localhost_ref: profile };
      const r = await run(env, pod, `echo-${defaultAction.length}`, { command: ['echo', 'hello'], linux: { security_context: { seccomp, no_new_privs: true } } });
      assert.deepEqual(r, { out: 'hello', code: 0, reason: 'Completed', message: '' }, defaultAction);
      // As another user too: the identity change happens before the filter.
      const u = await run(env, pod, `echo-user-${defaultAction.length}`, {
        command: ['echo', 'hello'],
        linux: { security_context: { seccomp, no_new_privs: true, run_as_user: { value: '1000' } } },
      });
      assert.deepEqual(u, { out: 'hello', code: 0, reason: 'Completed', message: '' }, `${defaultAction} as 1000`);
    }
    // Without no_new_privs the filter needs CAP_SYS_ADMIN to load: a container that keeps
    // it gets the filter last as well.
    const admin = await run(env, pod, 'echo-admin', {
      command: ['echo', 'hello'],
      linux: { security_context: { seccomp: { profile_type: 'Localhost', localhost_ref: profile }, capabilities: { add_capabilities: ['SYS_ADMIN'] } } },
    });
    assert.deepEqual(admin, { out: 'hello', code: 0, reason: 'Completed', message: '' }, 'CAP_SYS_ADMIN without no_new_privs');
  });
});

test('an error after the start byte (execve refused by the profile) is a clear StartContainer error', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const profile = path.join(env.dir, 'no-exec.json');
    fs.writeFileSync(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['execve'], action: 'SCMP_ACT_ERRNO' }] }));
    const id = await createContainer(env, pod, 'noexec', {
      command: ['echo', 'hello'],
      linux: { security_context: { seccomp: { profile_type: 'Localhost', localhost_ref: profile }, no_new_privs: true } },
    });
    await assert.rejects(env.client.call('StartContainer', { container_id: id }), (e: ServiceError) => {
      assert.equal(e.code, Status.UNKNOWN);
      assert.match(e.details, /exec process/);
      assert.match(e.details, /EPERM|not permitted/);
      return true;
    });
    const st = (await env.client.call('ContainerStatus', { container_id: id })).status!;
    assert.equal(st.state, 'CONTAINER_EXITED');
    assert.equal(st.reason, 'StartError');
  });
});

test('a uid or gid of 4294967295 ("unchanged" to the kernel) is refused: INVALID_ARGUMENT naming the field, nothing left', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const base = { metadata: { name: 'minus1', attempt: 0 }, image: { image: busyboxRef }, command: ['id'], log_path: 'minus1.log' };
    const cases: Array<[object, RegExp]> = [
      [{ run_as_user: { value: '4294967295' } }, /run_as_user/],
      [{ run_as_user: { value: '1000' }, run_as_group: { value: '4294967295' } }, /run_as_group/],
    ];
    for (const [sc, field] of cases) {
      await assert.rejects(
        env.client.call('CreateContainer', { pod_sandbox_id: pod.sandboxId, sandbox_config: pod.sandboxConfig, config: { ...base, linux: { security_context: sc } } }),
        (e: ServiceError) => {
          assert.equal(e.code, Status.INVALID_ARGUMENT, e.details);
          assert.match(e.details, field);
          assert.match(e.details, /4294967295/);
          return true;
        },
      );
    }
    assert.equal((await env.client.call('ListContainers', {})).containers.length, 0);
    // ExecSync into a container as a real user is not affected.
    const id = await createContainer(env, pod, 'app', { command: ['sleep', '600'], linux: { security_context: { run_as_user: { value: '1000' } } } });
    await env.client.call('StartContainer', { container_id: id });
    assert.equal(await exec(env, id, 'id -u; id -g'), '1000\n1000');
  });
});

test('the child refuses a uid or gid of 4294967295 itself (EINVAL at set uid / set gid), it never stays root', async () => {
  const dir = makeTempDir();
  try {
    await withoutLeaks({ mountPrefixes: [dir] }, async () => {
      const rootfs = buildRootfs(dir);
      const spec = (over: Partial<ProcessSpec>): ProcessSpec => ({
        ...baseProcessSpec(rootfs, ['id', '-u']),
        namespaces: (['mount', 'pid'] as const).map((type) => ({ type, path: null })),
        mounts: defaultMounts(),
        ...defaultDev(),
        env: ['PATH=/bin'],
        ...over,
      });
      for (const [over, step] of [
        [{ uid: 4294967295 }, /set uid/],
        [{ gid: 4294967295 }, /set gid/],
      ] as const) {
        let created = null;
        try {
          await assert.rejects(
            createProcess(spec(over)).then((h) => {
              created = h;
              return h;
            }),
            (e: unknown) => {
              assert.ok(e instanceof SyscallError, String(e));
              assert.equal(e.code, 'EINVAL');
              assert.match(e.message, step);
              return true;
            },
          );
        } finally {
          if (created) {
            signalProcess(created, 'SIGKILL');
            await releaseProcess(created).catch(() => undefined);
          }
        }
      }
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** The mount options of each mount point in a mountinfo text. */
function mountOptions(mountinfo: string): Map<string, string[]> {
  return new Map(mountTable(mountinfo).map((m) => [m.mountPoint, m.options]));
}

test('bind mounts get their flags on the mount itself: a readOnly volume is read-only, /dev/shm nosuid,nodev,noexec, propagation as asked', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const data = path.join(env.dir, 'data');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'hello.txt'), 'from the host');
    const pod = await runPod(env);
    const id = await createContainer(env, pod, 'ro', {
      command: ['sleep', '600'],
      mounts: [
        { container_path: '/data', host_path: data, readonly: true },
        { container_path: '/rw', host_path: data, readonly: false },
      ],
    });
    await env.client.call('StartContainer', { container_id: id });
    assert.equal(await exec(env, id, 'cat /data/hello.txt'), 'from the host');
    assert.match(await exec(env, id, '(echo x > /data/new) 2>&1; echo $?'), /Read-only file system\n1$/);
    assert.equal(fs.existsSync(path.join(data, 'new')), false);
    assert.equal(await exec(env, id, 'echo x > /rw/new && echo ok'), 'ok');
    const opts = mountOptions(await exec(env, id, 'cat /proc/self/mountinfo'));
    assert.ok(opts.get('/data')?.includes('ro'), `/data: ${opts.get('/data')}`);
    assert.ok(opts.get('/rw')?.includes('rw'), `/rw: ${opts.get('/rw')}`);
    for (const f of ['nosuid', 'nodev', 'noexec']) assert.ok(opts.get('/dev/shm')?.includes(f), `/dev/shm ${f}: ${opts.get('/dev/shm')}`);
    // The host's own mounts of these dirs are untouched (the flags went on the container's copy).
    const host = new Map(mountTable().map((m) => [m.mountPoint, m.options]));
    for (const [mp, o] of host) if (mp.startsWith(env.dir)) assert.ok(!(mp.endsWith('/shm') && o.includes('ro')), `${mp} ${o}`);
  });
});

test('a tty container gets its pty from its own devpts (pts/0 of a fresh instance), and its output reaches the log', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const r = await run(env, pod, 'tty', {
      tty: true,
      command: ['sh', '-c', 'tty; for f in 0 1 2; do readlink /proc/self/fd/$f; done; ls -1 /dev/pts; echo done'],
    });
    assert.equal(r.code, 0, r.out);
    const lines = r.out.split(/\r?\n/).map((l) => l.trim());
    assert.deepEqual(lines.slice(0, 4), ['/dev/pts/0', '/dev/pts/0', '/dev/pts/0', '/dev/pts/0'], r.out);
    assert.deepEqual(lines.slice(4, 6).sort(), ['0', 'ptmx'], r.out);
    assert.equal(lines.at(-1), 'done');
    // As another user the slave is still its controlling terminal, and its own.
    const u = await run(env, pod, 'tty-user', {
      tty: true,
      command: ['sh', '-c', 'tty; stat -c %u /dev/pts/0; echo done'],
      linux: { security_context: { run_as_user: { value: '1000' } } },
    });
    assert.deepEqual(
      u.out.split(/\r?\n/).map((l) => l.trim()),
      ['/dev/pts/0', '1000', 'done'],
    );
  });
});

test("masks bind the runtime's /dev/null, not whatever the container's /dev/null is", async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    // The container's /dev/null is another device here (a CRI device entry; an image or a
    // volume at /dev could do the same): masked files must still read as empty.
    const r = await run(env, pod, 'masks', {
      // /proc/keys and /proc/timer_list: masked files this kernel has (/proc/kcore it lacks)
      command: ['sh', '-c', 'head -c 16 /dev/null | wc -c; for f in /proc/keys /proc/timer_list; do head -c 16 $f | wc -c; done; stat -c %t:%T /proc/keys'],
      linux: {},
      devices: [{ container_path: '/dev/null', host_path: '/dev/zero', permissions: 'rwm' }],
    } as RunOpts);
    const lines = r.out.split('\n').map((l) => l.trim());
    assert.equal(r.code, 0, r.out);
    assert.equal(lines[0], '16', `the container's /dev/null is /dev/zero: ${r.out}`);
    assert.deepEqual(
      lines.slice(1, -1).filter((l) => l !== '0'),
      [],
      `masked files read empty: ${r.out}`,
    );
    assert.equal(lines.at(-1), '1:3', `masked /proc/keys is the host's /dev/null: ${r.out}`);
  });
});
