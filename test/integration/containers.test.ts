/**
 * Containers through the gRPC API, for real: busybox from an image imported offline, in a
 * pod with the real bridge network; logs in kubelet's format, exits and reasons, stop
 * timeouts, OOM, security settings, exec-sync, mounts, resources, events, bad input,
 * scale, and restarts of the daemon.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { podConfig } from '../helpers/pods';
import { busyboxRef, startPodEnv, type PodEnv } from '../helpers/pod-env';

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface RunOpts {
  command: string[];
  linux?: object;
  mounts?: object[];
  logPath?: string;
  envs?: { key: string; value: string }[];
}

async function runPod(env: PodEnv, pod = podConfig()) {
  const logDirectory = path.join(env.logDir, pod.metadata.uid);
  const config = { ...pod, log_directory: logDirectory };
  const { pod_sandbox_id } = await env.client.call('RunPodSandbox', { config });
  return { sandboxId: pod_sandbox_id, sandboxConfig: config };
}

async function createContainer(env: PodEnv, pod: { sandboxId: string; sandboxConfig: object }, name: string, o: RunOpts) {
  const { container_id } = await env.client.call('CreateContainer', {
    pod_sandbox_id: pod.sandboxId,
    sandbox_config: pod.sandboxConfig,
    config: {
      metadata: { name, attempt: 0 },
      image: { image: busyboxRef },
      command: o.command,
      envs: o.envs ?? [],
      log_path: o.logPath ?? `${name}.log`,
      mounts: o.mounts ?? [],
      linux: o.linux ?? {},
    },
  });
  return container_id;
}

async function waitExited(env: PodEnv, id: string) {
  return until('exit', async () => {
    const st = (await env.client.call('ContainerStatus', { container_id: id })).status!;
    return st.state === 'CONTAINER_EXITED' ? st : null;
  });
}

function logLines(file: string): { stream: string; tag: string; text: string }[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const m = /^(\S+) (stdout|stderr) ([PF]) (.*)$/.exec(l);
      assert.ok(m, `a CRI log line: ${l}`);
      assert.ok(!Number.isNaN(Date.parse(m[1])), `timestamp ${m[1]}`);
      return { stream: m[2], tag: m[3], text: m[4] };
    });
}

test('logs in CRI format, exit codes and reasons, running then exited', async () => {
  const env = await startPodEnv();
  try {
    const pod = await runPod(env);
    const hello = await createContainer(env, pod, 'hello', { command: ['sh', '-c', 'echo hello; echo err >&2'] });
    assert.equal((await env.client.call('ContainerStatus', { container_id: hello })).status?.state, 'CONTAINER_CREATED');
    await env.client.call('StartContainer', { container_id: hello });
    const st = await waitExited(env, hello);
    assert.equal(st.exit_code, 0);
    assert.equal(st.reason, 'Completed');
    const lines = logLines(st.log_path);
    assert.deepEqual(
      lines.map((l) => [l.stream, l.tag, l.text]).sort(),
      [
        ['stderr', 'F', 'err'],
        ['stdout', 'F', 'hello'],
      ],
    );

    const three = await createContainer(env, pod, 'three', { command: ['sh', '-c', 'exit 3'] });
    await env.client.call('StartContainer', { container_id: three });
    const st3 = await waitExited(env, three);
    assert.equal(st3.exit_code, 3);
    assert.equal(st3.reason, 'Error');

    const sleeper = await createContainer(env, pod, 'sleeper', { command: ['sleep', '2'] });
    await env.client.call('StartContainer', { container_id: sleeper });
    assert.equal((await env.client.call('ContainerStatus', { container_id: sleeper })).status?.state, 'CONTAINER_RUNNING');
    const st4 = await waitExited(env, sleeper);
    assert.equal(st4.exit_code, 0);
    assert.ok(BigInt(st4.finished_at) - BigInt(st4.started_at) >= 1_900_000_000n);

    const list = await env.client.call('ListContainers', { filter: { pod_sandbox_id: pod.sandboxId } });
    assert.equal(list.containers.length, 3);
    for (const id of [hello, three, sleeper]) await env.client.call('RemoveContainer', { container_id: id });
    await env.client.call('RemovePodSandbox', { pod_sandbox_id: pod.sandboxId });
  } finally {
    await env.cleanup();
  }
});

test('stop: SIGKILL after the timeout for a process ignoring SIGTERM, at once for 0', async () => {
  const env = await startPodEnv();
  try {
    const pod = await runPod(env);
    const stubborn = await createContainer(env, pod, 'stubborn', { command: ['sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done'] });
    await env.client.call('StartContainer', { container_id: stubborn });
    const t0 = Date.now();
    await env.client.call('StopContainer', { container_id: stubborn, timeout: '2' });
    const took = Date.now() - t0;
    assert.ok(took >= 1900 && took < 6000, `stop took ${took} ms`);
    const st = (await env.client.call('ContainerStatus', { container_id: stubborn })).status!;
    assert.equal(st.state, 'CONTAINER_EXITED');
    assert.equal(st.exit_code, 137);
    await env.client.call('StopContainer', { container_id: stubborn, timeout: '2' });

    const quick = await createContainer(env, pod, 'quick', { command: ['sleep', '60'] });
    await env.client.call('StartContainer', { container_id: quick });
    const t1 = Date.now();
    await env.client.call('StopContainer', { container_id: quick, timeout: '0' });
    assert.ok(Date.now() - t1 < 1500);
    assert.equal((await env.client.call('ContainerStatus', { container_id: quick })).status?.exit_code, 137);
  } finally {
    await env.cleanup();
  }
});

test('a 16 MiB memory limit and a process that wants more ends OOMKilled', async () => {
  const env = await startPodEnv();
  try {
    const pod = await runPod(env);
    const hog = await createContainer(env, pod, 'hog', {
      command: ['sh', '-c', 'tail /dev/zero'],
      linux: { resources: { memory_limit_in_bytes: String(16 * 1024 * 1024) } },
    });
    await env.client.call('StartContainer', { container_id: hog });
    const st = await waitExited(env, hog);
    assert.equal(st.reason, 'OOMKilled');
    assert.equal(st.exit_code, 137);
  } finally {
    await env.cleanup();
  }
});

async function output(env: PodEnv, pod: { sandboxId: string; sandboxConfig: object }, name: string, o: RunOpts): Promise<{ out: string; code: number }> {
  const id = await createContainer(env, pod, name, o);
  await env.client.call('StartContainer', { container_id: id });
  const st = await waitExited(env, id);
  const out = logLines(st.log_path)
    .map((l) => l.text)
    .join('\n');
  return { out, code: st.exit_code };
}

test('security: run_as_user, readonly rootfs, dropped capabilities, seccomp profiles', async () => {
  const env = await startPodEnv();
  try {
    const pod = await runPod(env);
    const user = await output(env, pod, 'user', { command: ['id', '-u'], linux: { security_context: { run_as_user: { value: '1000' } } } });
    assert.equal(user.out, '1000');

    const ro = await output(env, pod, 'ro', { command: ['sh', '-c', 'touch /newfile 2>/dev/null && echo wrote || echo refused'], linux: { security_context: { readonly_rootfs: true } } });
    assert.equal(ro.out, 'refused');

    const caps = await output(env, pod, 'caps', {
      command: ['sh', '-c', 'grep CapEff /proc/self/status'],
      linux: { security_context: { capabilities: { drop_capabilities: ['CHOWN', 'KILL'] } } },
    });
    const capEff = BigInt(`0x${caps.out.split(/\s+/)[1]}`);
    assert.equal(capEff & 1n, 0n, 'CAP_CHOWN dropped');
    assert.equal(capEff & (1n << 5n), 0n, 'CAP_KILL dropped');
    assert.notEqual(capEff & (1n << 1n), 0n, 'CAP_DAC_OVERRIDE kept');

    const seccomp = await output(env, pod, 'seccomp', {
      command: ['sh', '-c', 'unshare -U true 2>/dev/null && echo allowed || echo refused'],
      linux: { security_context: { seccomp: { profile_type: 'RuntimeDefault' } } },
    });
    assert.equal(seccomp.out, 'refused');
    const unconfined = await output(env, pod, 'unconfined', { command: ['sh', '-c', 'unshare -U true 2>/dev/null && echo allowed || echo refused'] });
    assert.equal(unconfined.out, 'allowed');

    const profile = path.join(env.dir, 'no-mkdir.json');
    fs.writeFileSync(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] }));
    const local = await output(env, pod, 'local', {
      command: ['sh', '-c', 'mkdir /tmp/d 2>&1; echo $?'],
      linux: { security_context: { seccomp: { profile_type: 'Localhost', localhost_ref: profile } } },
    });
    assert.match(local.out, /Operation not permitted/);
  } finally {
    await env.cleanup();
  }
});

test('ExecSync: output and exit code; a timeout kills the command and says so', async () => {
  const env = await startPodEnv();
  try {
    const pod = await runPod(env);
    const id = await createContainer(env, pod, 'target', { command: ['sleep', '60'] });
    await env.client.call('StartContainer', { container_id: id });
    const r = await env.client.call('ExecSync', { container_id: id, cmd: ['sh', '-c', 'echo out; echo err >&2; exit 4'], timeout: '5' });
    assert.equal(r.stdout.toString(), 'out\n');
    assert.equal(r.stderr.toString(), 'err\n');
    assert.equal(r.exit_code, 4);
    const t0 = Date.now();
    await assert.rejects(env.client.call('ExecSync', { container_id: id, cmd: ['sleep', '10'], timeout: '1' }), (e: ServiceError) => {
      assert.equal(e.code, Status.DEADLINE_EXCEEDED);
      assert.match(e.details, /timed out after 1s/);
      return true;
    });
    assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
    const ps = await env.client.call('ExecSync', { container_id: id, cmd: ['ps', '-o', 'args'], timeout: '5' });
    assert.doesNotMatch(ps.stdout.toString(), /sleep 10/);
  } finally {
    await env.cleanup();
  }
});

test('mounts: a read-only host dir; /etc/hosts and resolv.conf from the sandbox; resources update live', async () => {
  const env = await startPodEnv();
  try {
    const hostDir = path.join(env.dir, 'data');
    fs.mkdirSync(hostDir);
    fs.writeFileSync(path.join(hostDir, 'hello.txt'), 'from the host');
    const pod = await runPod(env, podConfig({ hostname: 'webhost' }));
    const id = await createContainer(env, pod, 'm', {
      command: ['sleep', '60'],
      mounts: [{ container_path: '/data', host_path: hostDir, readonly: true }],
    });
    await env.client.call('StartContainer', { container_id: id });
    const exec = async (cmd: string) => (await env.client.call('ExecSync', { container_id: id, cmd: ['sh', '-c', cmd], timeout: '5' })).stdout.toString().trim();
    assert.equal(await exec('cat /data/hello.txt'), 'from the host');
    assert.equal(await exec('touch /data/x 2>/dev/null && echo wrote || echo refused'), 'refused');
    assert.match(await exec('cat /etc/hosts'), /webhost/);
    assert.equal(await exec('hostname'), 'webhost');
    assert.equal(await exec('cat /etc/resolv.conf'), fs.readFileSync('/etc/resolv.conf', 'utf8').trim());

    await env.client.call('UpdateContainerResources', { container_id: id, linux: { memory_limit_in_bytes: String(64 * 1024 * 1024) } });
    const st = await env.client.call('ContainerStatus', { container_id: id, verbose: true });
    const cgroupPath = (JSON.parse(st.info.info) as { cgroupPath: string }).cgroupPath;
    assert.equal(fs.readFileSync(path.join('/sys/fs/cgroup/memory', cgroupPath, 'memory.limit_in_bytes'), 'utf8').trim(), String(64 * 1024 * 1024));
    assert.equal(st.status?.resources?.linux?.memory_limit_in_bytes, String(64 * 1024 * 1024));

    const stats = (await env.client.call('ContainerStats', { container_id: id })).stats!;
    assert.ok(Number(stats.memory?.working_set_bytes?.value) > 0);
    assert.ok(stats.writable_layer?.used_bytes !== null);
  } finally {
    await env.cleanup();
  }
});

test('GetContainerEvents sees created, started, stopped, deleted in order', async () => {
  const env = await startPodEnv();
  try {
    const pod = await runPod(env);
    const events: { id: string; type: string }[] = [];
    const call = env.client.openStream('GetContainerEvents', {});
    call.on('data', (e: { container_id: string; container_event_type: string }) => events.push({ id: e.container_id, type: e.container_event_type }));
    call.on('error', () => {});
    await new Promise((r) => setTimeout(r, 200));
    const id = await createContainer(env, pod, 'ev', { command: ['true'] });
    await env.client.call('StartContainer', { container_id: id });
    await waitExited(env, id);
    await env.client.call('RemoveContainer', { container_id: id });
    await until('events', async () => events.filter((e) => e.id === id).length >= 4);
    call.cancel();
    assert.deepEqual(
      events.filter((e) => e.id === id).map((e) => e.type),
      ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT'],
    );
  } finally {
    await env.cleanup();
  }
});
