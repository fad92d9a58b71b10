/**
 * Every step of RunPodSandbox, CreateContainer and StartContainer is on /metrics after a
 * pod start: nodecri_step_duration_seconds has a count for each (operation, step). Counts
 * only: the durations are the bench's (bench/pod-startup.ts), never a test's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createContainer, runPod, until } from '../helpers/containers';
import { withPodEnv } from '../helpers/pod-env';
import { podConfig } from '../helpers/pods';

/** The step counts of `operation` on a /metrics page, by step. */
function stepCounts(metrics: string, operation: string): Map<string, number> {
  const counts = new Map<string, number>();
  const re = /^nodecri_step_duration_seconds_count\{operation="([^"]+)",step="([^"]+)"\} (\d+)$/gm;
  for (const m of metrics.matchAll(re)) if (m[1] === operation) counts.set(m[2]!, Number(m[3]));
  return counts;
}

const runPodSandboxSteps = [
  'journal',
  'reserve_name',
  'cni_config',
  'run_dir',
  'pin_namespaces',
  'cgroup',
  'cni_attach',
  'shm',
  'sandbox_files',
  'infra_start',
  'persist',
  'commit',
];
const createContainerSteps = [
  'journal',
  'reserve_name',
  'image_status',
  'dirs',
  'prepare_rootfs',
  'mount_rootfs',
  'generate_spec',
  'write_spec',
  'cgroup',
  'fifos',
  'create_process',
  'open_log',
  'process_start_time',
  'persist',
  'commit',
];
const startContainerSteps = ['journal', 'journal_append', 'start_process', 'persist', 'watch_exit', 'event', 'journal_finish'];

test('a pod start puts every step of RunPodSandbox, CreateContainer and StartContainer on /metrics', async () => {
  await withPodEnv({ removePods: true, extraConfig: '[metrics]\nenabled = true\naddress = "127.0.0.1:0"' }, async (env) => {
    // A shared PID namespace, so that the pod has an infra process to start.
    const pod = await runPod(env, podConfig({ pid: 'POD' }));
    const id = await createContainer(env, pod, 'app', { command: ['sh', '-c', 'echo ready; exec sleep 600'] });
    await env.client.call('StartContainer', { container_id: id });
    await until('the container to run', async () => (await env.client.call('ContainerStatus', { container_id: id })).status?.state === 'CONTAINER_RUNNING');

    const metrics = await (await fetch(`http://${env.daemon.metricsAddress}/metrics`)).text();
    assert.match(metrics, /^# TYPE nodecri_step_duration_seconds histogram$/m);
    for (const [operation, steps] of [
      ['RunPodSandbox', runPodSandboxSteps],
      ['CreateContainer', createContainerSteps],
      ['StartContainer', startContainerSteps],
    ] as const) {
      const counts = stepCounts(metrics, operation);
      for (const step of steps) assert.equal(counts.get(step), 1, `${operation} step ${step} observed once (${JSON.stringify([...counts])})`);
      assert.deepEqual([...counts.keys()].sort(), [...steps].sort(), `${operation}: no step unaccounted for`);
    }
    // The buckets reach from 10 µs to a minute.
    assert.match(metrics, /^nodecri_step_duration_seconds_bucket\{le="0\.00001",operation="RunPodSandbox",step="journal"\} \d+$/m);
    assert.match(metrics, /^nodecri_step_duration_seconds_bucket\{le="60",operation="RunPodSandbox",step="journal"\} 1$/m);
  });
});
