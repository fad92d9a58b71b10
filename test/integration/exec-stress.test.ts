/**
 * The exec path under load (issue 9, point 3): thousands of ExecSyncs into one running
 * container, half failing with exit 3, some timing out, while a busy loop in a second
 * container takes a CPU, 8 in flight. Every exit code must be the command's, every timeout
 * must be reported as one, no zombie of the daemon may be left once they are done, and no
 * process once the pod is removed. No assertion on durations.
 *
 * NODECRI_EXEC_STRESS_COUNT lowers the count (default 5000) for a quick local run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { withPodEnv } from '../helpers/pod-env';
import { childrenOf as children } from '../helpers/leaks';
import { createContainer, runPod, until } from '../helpers/containers';

const total = Number(process.env.NODECRI_EXEC_STRESS_COUNT ?? 5000);
const timeouts = 20;
const inFlight = 8;

/** The daemon's children, as "pid state comm". */
const childrenOf = (pid: number): string[] =>
  children(pid)
    .map((c) => `${c.pid} ${c.state} ${c.comm}`)
    .sort();

const zombies = (pid: number) => childrenOf(pid).filter((c) => c.split(' ')[1] === 'Z');

test(`${total} ExecSyncs under a CPU hog: every exit code right, no zombie, nothing left`, { timeout: 280_000 }, async () => {
  await withPodEnv({}, async (env) => {
    const daemonPid = env.daemon.workerPid;
    const pod = await runPod(env);
    const target = await createContainer(env, pod, 'target', { command: ['sleep', '3600'] });
    await env.client.call('StartContainer', { container_id: target });
    const hog = await createContainer(env, pod, 'hog', { command: ['sh', '-c', 'while :; do :; done'] });
    await env.client.call('StartContainer', { container_id: hog });

    // Which calls time out: spread over the run.
    const slow = new Set(Array.from({ length: timeouts }, (_, k) => Math.floor(((k + 0.5) * total) / timeouts)));
    const wrong: string[] = [];
    let next = 0;
    let timedOut = 0;
    const worker = async (): Promise<void> => {
      while (next < total) {
        const i = next++;
        if (slow.has(i)) {
          try {
            await env.client.call('ExecSync', { container_id: target, cmd: ['sleep', '5'], timeout: '1' });
            wrong.push(`exec ${i} (sleep 5, timeout 1s) returned instead of timing out`);
          } catch (e) {
            const err = e as ServiceError;
            if (err.code !== Status.DEADLINE_EXCEEDED || !/timed out after 1s/.test(err.details)) wrong.push(`exec ${i}: ${err.code} ${err.details}`);
            else timedOut++;
          }
          continue;
        }
        const fails = i % 2 === 1;
        const r = await env.client.call('ExecSync', { container_id: target, cmd: fails ? ['sh', '-c', 'exit 3'] : ['true'], timeout: '30' });
        if (r.exit_code !== (fails ? 3 : 0)) wrong.push(`exec ${i}: exit ${r.exit_code}, stderr ${r.stderr.toString()}`);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    assert.deepEqual(wrong.slice(0, 20), []);
    assert.equal(timedOut, timeouts);

    // Every exec process was reaped (a late one is reaped within moments; a lost one never).
    await until('no zombie children of the daemon', async () => zombies(daemonPid).length === 0, 15_000).catch(() => undefined);
    assert.deepEqual(zombies(daemonPid), []);
    const ps = await env.client.call('ExecSync', { container_id: target, cmd: ['ps', '-o', 'args'], timeout: '10' });
    assert.doesNotMatch(ps.stdout.toString(), /sleep 5/, 'the timed-out commands were killed');

    await env.client.call('RemovePodSandbox', { pod_sandbox_id: pod.sandboxId });
    // The daemon has no child left at all: no container, no exec, no zombie.
    await until('the daemon has no children', async () => childrenOf(daemonPid).length === 0, 15_000).catch(() => undefined);
    assert.deepEqual(childrenOf(daemonPid), []);
  });
});
