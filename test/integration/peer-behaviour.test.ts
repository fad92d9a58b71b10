/**
 * Where kubelet sees the difference, nodecri answers as containerd 1.6 does (issue 13, item
 * 5): each test is one behaviour that CRI-only tests written against containerd expect.
 * The unterminated last line, the missing command at start, the stop whose caller gives up,
 * the host-network pod with a hostname, the runtime handler as asked, and the stats of a
 * container that is not running.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { podConfig } from '../helpers/pods';
import { withPodEnv } from '../helpers/pod-env';
import { createContainer, logLines, runPod, until, waitExited } from '../helpers/containers';

const grpcError = (code: Status, message: RegExp) => (e: ServiceError) => {
  assert.equal(e.code, code, `${Status[e.code]}: ${e.details}`);
  assert.match(e.details, message);
  return true;
};

/** The text of a container's log so far (its records' text), for waiting on a line. */
const logText = (file: string): string =>
  fs.existsSync(file)
    ? logLines(file)
        .map((l) => l.text)
        .join('\n')
    : '';

test('a last line without a newline is a P record: kubelet adds no newline the container never wrote', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const id = await createContainer(env, pod, 'printf', { command: ['sh', '-c', "printf 'whole\\nno newline'; printf 'err' >&2"] });
    await env.client.call('StartContainer', { container_id: id });
    const st = await waitExited(env, id);
    assert.equal(st.exit_code, 0);
    const records = logLines(st.log_path).map((l) => [l.stream, l.tag, l.text]);
    assert.deepEqual(records.sort(), [
      ['stderr', 'P', 'err'],
      ['stdout', 'F', 'whole'],
      ['stdout', 'P', 'no newline'],
    ]);
  });
});

test('a command that does not exist fails StartContainer, not CreateContainer: EXITED, 128, StartError and the exec error', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    for (const [i, command] of ['no-such-command', '/bin/no-such-command'].entries()) {
      const id = await createContainer(env, pod, `missing-${i}`, { command: [command, 'arg'] });
      assert.equal((await env.client.call('ContainerStatus', { container_id: id })).status?.state, 'CONTAINER_CREATED');
      // containerd's code is UNKNOWN too, with runc's exec error as the message.
      await assert.rejects(
        env.client.call('StartContainer', { container_id: id }),
        grpcError(Status.UNKNOWN, new RegExp(`find executable: execve ${command}: No such file or directory`)),
      );
      const st = (await env.client.call('ContainerStatus', { container_id: id })).status!;
      assert.deepEqual([st.state, st.exit_code, st.reason], ['CONTAINER_EXITED', 128, 'StartError']);
      assert.match(st.message, new RegExp(`find executable: execve ${command}: No such file or directory`));
      assert.notEqual(st.finished_at, '0');
      // A second start is refused as for any exited container; removal leaves nothing.
      await assert.rejects(env.client.call('StartContainer', { container_id: id }), grpcError(Status.FAILED_PRECONDITION, /exited/));
      await env.client.call('RemoveContainer', { container_id: id });
    }
    // A program that exists but cannot be run is a start error as well.
    const id = await createContainer(env, pod, 'not-executable', { command: ['/etc/passwd'] });
    await assert.rejects(env.client.call('StartContainer', { container_id: id }), grpcError(Status.UNKNOWN, /find executable: execve \/etc\/passwd: Permission denied/));
    assert.equal((await env.client.call('ContainerStatus', { container_id: id })).status?.reason, 'StartError');
  });
});

/** A container that takes SIGTERM (says so), ignores it for `graceSeconds`, then says it is still alive. */
const termThenAlive = (graceSeconds: number) => ['sh', '-c', `trap 'echo term; sleep ${graceSeconds}; echo alive' TERM; echo ready; while true; do sleep 0.1; done`];

test('a StopContainer whose caller gives up (cancel, deadline) sends no SIGKILL: the container runs on', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    // Cancelled once the stop signal is seen: the 1 s timeout's SIGKILL would come before
    // "alive" (2 s after the signal), had the daemon gone on waiting.
    const cancelled = await createContainer(env, pod, 'cancelled', { command: termThenAlive(2) });
    await env.client.call('StartContainer', { container_id: cancelled });
    const cancelledLog = (await env.client.call('ContainerStatus', { container_id: cancelled })).status!.log_path;
    await until('ready', async () => logText(cancelledLog).includes('ready'), 30_000);
    const stop = env.client.cancellable('StopContainer', { container_id: cancelled, timeout: '1' });
    await until('the stop signal', async () => logText(cancelledLog).includes('term'), 30_000);
    stop.cancel();
    await assert.rejects(stop.result, (e: ServiceError) => e.code === Status.CANCELLED);
    await until('alive after the stop timeout', async () => logText(cancelledLog).includes('alive'), 30_000);
    assert.equal((await env.client.call('ContainerStatus', { container_id: cancelled })).status?.state, 'CONTAINER_RUNNING');

    // A deadline shorter than the stop timeout: the call ends at the deadline, the
    // container takes its time. "alive" comes after the stop timeout's SIGKILL would have;
    // the deadline leaves the call 4 s to reach the daemon on a loaded machine.
    const late = await createContainer(env, pod, 'deadline', { command: termThenAlive(7) });
    await env.client.call('StartContainer', { container_id: late });
    const lateLog = (await env.client.call('ContainerStatus', { container_id: late })).status!.log_path;
    await until('ready', async () => logText(lateLog).includes('ready'), 30_000);
    await assert.rejects(
      env.client.call('StopContainer', { container_id: late, timeout: '6' }, { deadline: Date.now() + 4000 }),
      (e: ServiceError) => e.code === Status.DEADLINE_EXCEEDED,
    );
    await until('the stop signal', async () => logText(lateLog).includes('term'), 30_000);
    await until('alive after the stop timeout', async () => logText(lateLog).includes('alive'), 30_000);
    assert.equal((await env.client.call('ContainerStatus', { container_id: late })).status?.state, 'CONTAINER_RUNNING');

    // A stop that is waited for still ends it (SIGKILL after the timeout: it ignores TERM).
    await env.client.call('StopContainer', { container_id: late, timeout: '1' });
    assert.equal((await env.client.call('ContainerStatus', { container_id: late })).status?.exit_code, 137);
  });
});

test('a host-network pod asking for its own hostname is INVALID_ARGUMENT naming the field, and leaves nothing', async () => {
  await withPodEnv({ image: false }, async ({ client }) => {
    const config = podConfig({ hostNetwork: true, hostname: 'my-own-name' });
    await assert.rejects(client.call('RunPodSandbox', { config }), grpcError(Status.INVALID_ARGUMENT, /config\.hostname "my-own-name" .*namespace_options\.network NODE/));
    assert.deepEqual((await client.call('ListPodSandbox', {})).items, []);
    // Without one it runs, with the node's hostname.
    const { pod_sandbox_id: id } = await client.call('RunPodSandbox', { config: podConfig({ hostNetwork: true }) });
    await client.call('RemovePodSandbox', { pod_sandbox_id: id });
  });
});

test('PodSandboxStatus and ListPodSandbox report runtime_handler as requested: "" for the default', async () => {
  await withPodEnv({ image: false }, async ({ client }) => {
    const { pod_sandbox_id: byDefault } = await client.call('RunPodSandbox', { config: podConfig(), runtime_handler: '' });
    const st = await client.call('PodSandboxStatus', { pod_sandbox_id: byDefault, verbose: true });
    assert.equal(st.status?.runtime_handler, '');
    // The handler it resolved to is in the verbose info.
    const resolved = (JSON.parse(st.info.info) as { runtimeHandler: string }).runtimeHandler;
    assert.ok(resolved !== '', 'the resolved handler is named in the info');
    const { pod_sandbox_id: named } = await client.call('RunPodSandbox', { config: podConfig(), runtime_handler: resolved });
    assert.equal((await client.call('PodSandboxStatus', { pod_sandbox_id: named })).status?.runtime_handler, resolved);
    const listed = new Map((await client.call('ListPodSandbox', {})).items.map((i) => [i.id, i.runtime_handler]));
    assert.deepEqual([listed.get(byDefault), listed.get(named)], ['', resolved]);
    for (const id of [byDefault, named]) await client.call('RemovePodSandbox', { pod_sandbox_id: id });
  });
});

test('stats of a container that is not running: ContainerStats refuses, ListContainerStats lists it without cpu or memory', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const created = await createContainer(env, pod, 'created', { command: ['sleep', '60'] });
    const exited = await createContainer(env, pod, 'exited', { command: ['true'] });
    await env.client.call('StartContainer', { container_id: exited });
    await waitExited(env, exited);
    const running = await createContainer(env, pod, 'running', { command: ['sleep', '60'] });
    await env.client.call('StartContainer', { container_id: running });

    for (const [id, state] of [
      [created, 'created'],
      [exited, 'exited'],
    ]) {
      await assert.rejects(env.client.call('ContainerStats', { container_id: id }), grpcError(Status.FAILED_PRECONDITION, new RegExp(`container ${id} is ${state}, not running`)));
    }
    assert.ok((await env.client.call('ContainerStats', { container_id: running })).stats?.cpu);

    const listed = new Map((await env.client.call('ListContainerStats', { filter: { pod_sandbox_id: pod.sandboxId } })).stats.map((s) => [s.attributes!.id, s]));
    assert.deepEqual([...listed.keys()].sort(), [created, exited, running].sort());
    for (const id of [created, exited]) {
      const s = listed.get(id)!;
      assert.deepEqual([s.cpu, s.memory], [null, null], `${id}: no usage messages at all`);
      assert.equal(s.attributes?.metadata?.name, id === created ? 'created' : 'exited');
      assert.ok(s.writable_layer, 'the writable layer is still reported');
    }
    const r = listed.get(running)!;
    assert.ok(r.cpu && r.memory, 'a running container has both');
    assert.match(r.memory.working_set_bytes?.value ?? 'missing', /^\d+$/);
  });
});
