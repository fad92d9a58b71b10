/**
 * Pods and containers through the CRI API for integration tests: run a pod, create a
 * busybox container, wait for its exit, read its CRI log.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { podConfig } from './pods';
import { busyboxRef, type PodEnv } from './pod-env';

export async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface RunOpts {
  command: string[];
  linux?: object;
  mounts?: object[];
  logPath?: string;
  envs?: { key: string; value: string | Buffer }[];
  tty?: boolean;
  /** the container keeps its stdin (attach writes it) */
  stdin?: boolean;
  /** an image reference other than the busybox one */
  image?: string;
  devices?: object[];
}

/** A pod as the tests hand it around: its id and the config it was made with. */
export interface Pod {
  sandboxId: string;
  sandboxConfig: object;
}

export async function runPod(env: PodEnv, pod: { metadata: { uid: string } } = podConfig()): Promise<Pod> {
  const logDirectory = path.join(env.logDir, pod.metadata.uid);
  const config = { ...pod, log_directory: logDirectory };
  const { pod_sandbox_id } = await env.client.call('RunPodSandbox', { config });
  return { sandboxId: pod_sandbox_id, sandboxConfig: config };
}

export async function createContainer(env: PodEnv, pod: Pod, name: string, o: RunOpts): Promise<string> {
  const { container_id } = await env.client.call('CreateContainer', {
    pod_sandbox_id: pod.sandboxId,
    sandbox_config: pod.sandboxConfig,
    config: {
      metadata: { name, attempt: 0 },
      image: { image: o.image ?? busyboxRef },
      command: o.command,
      envs: o.envs ?? [],
      log_path: o.logPath ?? `${name}.log`,
      mounts: o.mounts ?? [],
      linux: o.linux ?? {},
      devices: o.devices ?? [],
      tty: o.tty ?? false,
      stdin: o.stdin ?? false,
    },
  });
  return container_id;
}

export async function waitExited(env: PodEnv, id: string) {
  return until('exit', async () => {
    const st = (await env.client.call('ContainerStatus', { container_id: id })).status!;
    return st.state === 'CONTAINER_EXITED' ? st : null;
  });
}

export function logLines(file: string): { stream: string; tag: string; text: string }[] {
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

export async function output(env: PodEnv, pod: Pod, name: string, o: RunOpts): Promise<{ out: string; code: number }> {
  const id = await createContainer(env, pod, name, o);
  await env.client.call('StartContainer', { container_id: id });
  const st = await waitExited(env, id);
  const out = logLines(st.log_path)
    .map((l) => l.text)
    .join('\n');
  return { out, code: st.exit_code };
}

/** A container command printing a counter (0, 1, 2, ...) every 10 ms. */
export const counter = ['sh', '-c', 'i=0; while true; do echo $i; i=$((i+1)); sleep 0.01; done'];

/** The counter values a container's log holds, joining P records to their line. */
export function counterValues(file: string): number[] {
  const values: number[] = [];
  let partial = '';
  for (const l of logLines(file)) {
    partial += l.text;
    if (l.tag === 'F') {
      values.push(Number(partial));
      partial = '';
    }
  }
  return values;
}
