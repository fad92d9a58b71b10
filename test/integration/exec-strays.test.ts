/**
 * An exec's intermediate killed between its clone and its PID frame (a kill of the
 * container's cgroup, the OOM killer during a probe): the real child is the daemon's, but
 * the daemon never learnt of it. The exec must fail at once (not after the 60 s setup
 * timeout), and the stray, a zombie nobody watches in the container's PID namespace, must
 * not hold that namespace's init from dying: StopContainer (own PID namespace) and
 * StopPodSandbox (pause as the pod's PID 1) complete, and nothing is left.
 *
 * NODECRI_TEST_KILL_INTERMEDIATE=1 makes every exec's intermediate SIGKILL itself right
 * after its clone (creates are left alone).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { ServiceError } from '@grpc/grpc-js';
import { podConfig } from '../helpers/pods';
import { withPodEnv } from '../helpers/pod-env';
import { createContainer, runPod } from '../helpers/containers';

const env = { NODECRI_TEST_KILL_INTERMEDIATE: '1' };

/** The daemon's children in the PID namespace at `nsLink`, as "pid state". */
function childrenIn(daemonPid: number, nsLink: string): string[] {
  const out: string[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === daemonPid && fs.readlinkSync(`/proc/${name}/ns/pid`) === nsLink) out.push(`${name} ${state}`);
    } catch {
      // gone while we looked
    }
  }
  return out;
}

async function failingExec(env: Parameters<Parameters<typeof withPodEnv>[1]>[0], id: string): Promise<void> {
  await assert.rejects(env.client.call('ExecSync', { container_id: id, cmd: ['true'], timeout: '0' }), (e: ServiceError) => {
    assert.match(e.details, /intermediate died before passing the process/);
    return true;
  });
}

test('an exec whose intermediate dies after its clone fails at once; StopContainer still completes', { timeout: 90_000 }, async () => {
  await withPodEnv({ env }, async (env) => {
    const pod = await runPod(env);
    const id = await createContainer(env, pod, 'target', { command: ['sleep', '3600'] });
    await env.client.call('StartContainer', { container_id: id });
    const ns = fs.readlinkSync(`/proc/${await pidOf(env, id)}/ns/pid`);
    await failingExec(env, id);
    await failingExec(env, id);
    // The strays are the daemon's children in the container's namespace, beside its init.
    assert.ok(childrenIn(env.daemon.workerPid, ns).length >= 2, 'the exec children were cloned');
    await env.client.call('StopContainer', { container_id: id, timeout: '0' });
    const after = await env.client.call('ContainerStatus', { container_id: id });
    assert.equal(after.status?.state, 'CONTAINER_EXITED');
    assert.deepEqual(childrenIn(env.daemon.workerPid, ns), []);
    await env.client.call('RemovePodSandbox', { pod_sandbox_id: pod.sandboxId });
  });
});

test('the same in a pod-wide PID namespace: StopPodSandbox (pause is its init) completes', { timeout: 90_000 }, async () => {
  await withPodEnv({ env }, async (env) => {
    const pod = await runPod(env, podConfig({ pid: 'POD' }));
    const shared = { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' } };
    const id = await createContainer(env, pod, 'target', { command: ['sleep', '3600'], linux: { security_context: shared } });
    await env.client.call('StartContainer', { container_id: id });
    await failingExec(env, id);
    await env.client.call('StopPodSandbox', { pod_sandbox_id: pod.sandboxId });
    const after = await env.client.call('ContainerStatus', { container_id: id });
    assert.equal(after.status?.state, 'CONTAINER_EXITED');
    await env.client.call('RemovePodSandbox', { pod_sandbox_id: pod.sandboxId });
  });
});

/** The container's init pid, from ContainerStatus' verbose info. */
async function pidOf(env: Parameters<Parameters<typeof withPodEnv>[1]>[0], id: string): Promise<number> {
  const r = await env.client.call('ContainerStatus', { container_id: id, verbose: true });
  return Number(JSON.parse(r.info.info).pid);
}

/** How many pidfds the process holds. */
function pidfdCount(pid: number): number {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (/pidfd/.test(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))) n++;
    } catch {
      // closed while we looked
    }
  }
  return n;
}

for (const [frame, message] of [
  ['two-fds', /more than one fd with a frame/],
  ['wrong-pid', /a pid frame whose pidfd names another pid/],
] as const) {
  test(`a PID frame the daemon rejects (${frame}): the exec fails, its child is killed and reaped, no pidfd leaks`, { timeout: 90_000 }, async () => {
    await withPodEnv({ env: { NODECRI_TEST_PID_FRAME: frame } }, async (env) => {
      const daemonPid = env.daemon.workerPid;
      const pod = await runPod(env);
      const id = await createContainer(env, pod, 'target', { command: ['sleep', '3600'] });
      await env.client.call('StartContainer', { container_id: id });
      const init = await pidOf(env, id);
      const ns = fs.readlinkSync(`/proc/${init}/ns/pid`);
      const pidfds = pidfdCount(daemonPid);
      await assert.rejects(env.client.call('ExecSync', { container_id: id, cmd: ['true'], timeout: '0' }), (e: ServiceError) => {
        assert.match(e.details, message);
        return true;
      });
      // Settled only once every child of the spawn is reaped: nothing but the init is left.
      assert.deepEqual(childrenIn(daemonPid, ns), [`${init} S`]);
      assert.equal(pidfdCount(daemonPid), pidfds);
      await env.client.call('RemovePodSandbox', { pod_sandbox_id: pod.sandboxId });
    });
  });
}
