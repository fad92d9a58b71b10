/**
 * kill -9 at every step: the daemon is started with NODECRI_FAULTS=crash:OP=N, which
 * makes it SIGKILL itself at the N-th fault point of OP (right before and right after each
 * journal write, between teardown steps); N walks from 1 until OP completes without
 * reaching it. After each kill a new daemon starts, and then: what a client was told
 * exists is there and usable, nothing half-made is (every pod READY, every container
 * startable), no journal is left, and once the pods are removed through the API nothing
 * at all is left: no mount, pin, cgroup, veth, IP, process, file or record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startPodEnv, cgroupDirsFor, type PodEnv } from '../helpers/pod-env';
import { bridgePorts, ipamAllocations } from '../helpers/cni';
import { diff, processesNaming, snapshot, type LeakScope } from '../helpers/leaks';
import { podConfig } from '../helpers/pods';
import { createContainer, runPod, until, type Pod } from '../helpers/containers';

type Op = 'RunPodSandbox' | 'CreateContainer' | 'StartContainer' | 'RemovePodSandbox';

function leakScope(env: PodEnv): LeakScope {
  return {
    mountPrefixes: [env.dir],
    dirs: ['run/sandboxes', 'root/sandboxes', 'root/cni-cache', 'run/containers', 'root/containers', 'root/images/rootfs'].map((d) => path.join(env.dir, d)),
    cgroupDirs: cgroupDirsFor(env.cgroupParent),
  };
}

const sleeper = { command: ['sh', '-c', 'exec sleep 1000'] };

async function startContainer(env: PodEnv, id: string): Promise<void> {
  await env.client.call('StartContainer', { container_id: id });
  await until('container running', async () => (await env.client.call('ContainerStatus', { container_id: id })).status?.state === 'CONTAINER_RUNNING');
}

/** Runs `op` (and what it needs first) on the armed daemon; resolves true if the daemon died in it. */
async function scenario(env: PodEnv, op: Op): Promise<boolean> {
  const inOp = async (fn: () => Promise<unknown>): Promise<boolean> => {
    try {
      await fn();
      return false;
    } catch (e) {
      const exit = await Promise.race([env.daemon.exited, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
      if (exit?.signal === 'SIGKILL') return true;
      throw e;
    }
  };
  const pidPod = () => podConfig({ pid: 'POD' });
  if (op === 'RunPodSandbox') return inOp(() => runPod(env, pidPod()));
  const pod: Pod = await runPod(env, pidPod());
  if (op === 'CreateContainer') return inOp(() => createContainer(env, pod, 'c', sleeper));
  const id = await createContainer(env, pod, 'c', sleeper);
  if (op === 'StartContainer') return inOp(() => env.client.call('StartContainer', { container_id: id }));
  await startContainer(env, id);
  return inOp(() => env.client.call('RemovePodSandbox', { pod_sandbox_id: pod.sandboxId }));
}

/** After the restart: what exists is whole and usable. */
async function checkUsable(env: PodEnv, op: Op): Promise<void> {
  const pods = (await env.client.call('ListPodSandbox', {})).items;
  const containers = (await env.client.call('ListContainers', {})).containers;
  if (op === 'RemovePodSandbox') {
    // Rolled forward: a removal that had begun is finished; one that had not leaves all.
    if (pods.length === 1) assert.equal(containers.length, 1);
    return;
  }
  // The pod of every op but RunPodSandbox was reported created before the kill.
  if (op !== 'RunPodSandbox') assert.equal(pods.length, 1, 'the pod reported created is still there');
  assert.ok(pods.length <= 1);
  for (const p of pods) {
    assert.equal(p.state, 'SANDBOX_READY', `pod ${p.id} is whole`);
    const st = await env.client.call('PodSandboxStatus', { pod_sandbox_id: p.id });
    assert.match(st.status?.network?.ip ?? '', /^\d+\.\d+\.\d+\.\d+$/);
  }
  if (op === 'StartContainer') assert.equal(containers.length, 1, 'the container reported created is still there');
  for (const c of containers) {
    if (c.state === 'CONTAINER_CREATED') await startContainer(env, c.id);
    else assert.equal(c.state, 'CONTAINER_RUNNING');
  }
  // The pod takes a new container too.
  if (pods.length === 1 && op !== 'StartContainer') {
    const pod: Pod = { sandboxId: pods[0].id, sandboxConfig: {} };
    await startContainer(env, await createContainer(env, pod, 'after', sleeper));
  }
}

async function killAtEveryStep(op: Op): Promise<void> {
  // Without the keeper: a daemon that kills itself at a fault point must stay dead (the
  // keeper would start it again, with the same fault armed); recovery is the same either way.
  const env = await startPodEnv({ dropIns: { '50-no-keeper.toml': 'keeper = false\n' } });
  try {
    const scope = leakScope(env);
    const before = snapshot(scope);
    let crashes = 0;
    for (let n = 1; ; n++) {
      await env.replaceDaemon({ NODECRI_FAULTS: `crash:${op}=${n}` });
      const crashed = await scenario(env, op);
      await env.replaceDaemon();
      const ops = path.join(env.daemon.runroot, 'ops');
      const journals = fs.existsSync(ops) ? fs.readdirSync(ops) : [];
      if (crashed) {
        crashes++;
        await checkUsable(env, op);
      }
      await env.removePods();
      const leaked = diff(before, snapshot(scope));
      leaked.children = leaked.children.filter((c) => !c.startsWith(`${env.daemon.proc.pid} `));
      const links = bridgePorts(env.cni.bridge);
      assert.deepEqual(
        { ...leaked, links, ips: ipamAllocations(env.cni), processes: processesNaming(env.dir, [env.daemon.proc.pid ?? 0, env.daemon.workerPid]) },
        { mounts: [], files: [], cgroups: [], children: [], links: [], ips: [], processes: [] },
        `kill at point ${n} of ${op}: leaked`,
      );
      assert.deepEqual(journals, [], `kill at point ${n} of ${op}: no journal left after recovery`);
      if (!crashed) break;
    }
    assert.ok(crashes >= 3, `${op} has fault points (${crashes})`);
  } catch (e) {
    // The body's failure is the news; a cleanup that fails after it must not hide it.
    await env.cleanup().catch((c: unknown) => process.stderr.write(`cleanup after failure: ${String(c)}\n`));
    throw e;
  }
  await env.cleanup();
}

for (const op of ['RunPodSandbox', 'CreateContainer', 'StartContainer', 'RemovePodSandbox'] as const) {
  test(`kill -9 at every step of ${op}: the next start leaves exactly what clients were told of`, { timeout: 280_000 }, () => killAtEveryStep(op));
}
