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
