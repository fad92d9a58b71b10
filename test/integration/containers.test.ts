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
import { busyboxRef, withPodEnv, type PodEnv } from '../helpers/pod-env';
import { counter, counterValues, createContainer, logLines, output, runPod, until, waitExited } from '../helpers/containers';
import { memoryLimitOf } from '../helpers/cgroups';

test('logs in CRI format, exit codes and reasons, running then exited', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const hello = await createContainer(env, pod, 'hello', { command: ['sh', '-c', 'echo hello; echo err >&2'] });
    assert.equal((await env.client.call('ContainerStatus', { container_id: hello })).status?.state, 'CONTAINER_CREATED');
    await env.client.call('StartContainer', { container_id: hello });
    const st = await waitExited(env, hello);
    assert.equal(st.exit_code, 0);
    assert.equal(st.reason, 'Completed');
    const lines = logLines(st.log_path);
    assert.deepEqual(lines.map((l) => [l.stream, l.tag, l.text]).sort(), [
      ['stderr', 'F', 'err'],
      ['stdout', 'F', 'hello'],
    ]);

    const three = await createContainer(env, pod, 'three', { command: ['sh', '-c', 'exit 3'] });
    await env.client.call('StartContainer', { container_id: three });
    const st3 = await waitExited(env, three);
    assert.equal(st3.exit_code, 3);
    assert.equal(st3.reason, 'Error');

    const sleeper = await createContainer(env, pod, 'sleeper', { command: ['sleep', '2'] });
    await env.client.call('StartContainer', { container_id: sleeper });
    // The times are the real ones: it started before StartContainer returned, and still ran
    // (so had not finished) when the status after that said RUNNING.
    const seenRunning = BigInt(Date.now()) * 1_000_000n;
    assert.equal((await env.client.call('ContainerStatus', { container_id: sleeper })).status?.state, 'CONTAINER_RUNNING');
    const st4 = await waitExited(env, sleeper);
    assert.equal(st4.exit_code, 0);
    assert.ok(BigInt(st4.started_at) <= seenRunning && seenRunning <= BigInt(st4.finished_at), `${st4.started_at} <= ${seenRunning} <= ${st4.finished_at}`);

    const list = await env.client.call('ListContainers', { filter: { pod_sandbox_id: pod.sandboxId } });
    assert.equal(list.containers.length, 3);
    for (const id of [hello, three, sleeper]) await env.client.call('RemoveContainer', { container_id: id });
    await env.client.call('RemovePodSandbox', { pod_sandbox_id: pod.sandboxId });
  });
});

test('stop: SIGKILL after the timeout for a process ignoring SIGTERM, at once for 0', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const stubborn = await createContainer(env, pod, 'stubborn', { command: ['sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done'] });
    await env.client.call('StartContainer', { container_id: stubborn });
    const t0 = Date.now();
    await env.client.call('StopContainer', { container_id: stubborn, timeout: '2' });
    const took = Date.now() - t0;
    assert.ok(took >= 1900, `stop waited the 2 s timeout before SIGKILL (${took} ms)`);
    const st = (await env.client.call('ContainerStatus', { container_id: stubborn })).status!;
    assert.equal(st.state, 'CONTAINER_EXITED');
    assert.equal(st.exit_code, 137);
    await env.client.call('StopContainer', { container_id: stubborn, timeout: '2' });

    const quick = await createContainer(env, pod, 'quick', { command: ['sleep', '60'] });
    await env.client.call('StartContainer', { container_id: quick });
    await env.client.call('StopContainer', { container_id: quick, timeout: '0' });
    assert.equal((await env.client.call('ContainerStatus', { container_id: quick })).status?.exit_code, 137);
  });
});

test('a 16 MiB memory limit and a process that wants more ends OOMKilled', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const hog = await createContainer(env, pod, 'hog', {
      command: ['sh', '-c', 'tail /dev/zero'],
      linux: { resources: { memory_limit_in_bytes: String(16 * 1024 * 1024) } },
    });
    await env.client.call('StartContainer', { container_id: hog });
    const st = await waitExited(env, hog);
    assert.equal(st.reason, 'OOMKilled');
    assert.equal(st.exit_code, 137);
  });
});

test('security: run_as_user, readonly rootfs, dropped capabilities, seccomp profiles', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const user = await output(env, pod, 'user', { command: ['id', '-u'], linux: { security_context: { run_as_user: { value: '1000' } } } });
    assert.equal(user.out, '1000');

    const ro = await output(env, pod, 'ro', {
      command: ['sh', '-c', 'touch /newfile 2>/dev/null && echo wrote || echo refused'],
      linux: { security_context: { readonly_rootfs: true } },
    });
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
  });
});

test('shared PID namespace: pause is PID 1 as 65535, its memory closed to the siblings, and it still reaps orphans', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env, podConfig({ pid: 'POD' }));
    const shared = { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' } };
    const status = await output(env, pod, 'status', {
      command: ['sh', '-c', 'cat /proc/1/cmdline; echo; grep -E "^(Uid|Gid|Groups):" /proc/1/status'],
      linux: { security_context: shared },
    });
    assert.match(status.out, /^\/pause\0?\n/);
    assert.match(status.out, /^Uid:\s+65535\s+65535\s+65535\s+65535$/m);
    assert.match(status.out, /^Gid:\s+65535\s+65535\s+65535\s+65535$/m);
    assert.match(status.out, /^Groups:\s*$/m);

    // A sibling with the default capabilities (no CAP_SYS_PTRACE), as root and as pause's own
    // uid, cannot open pause's memory for writing.
    const openMem = ['sh', '-c', '(exec 3<>/proc/1/mem) 2>&1; echo rc=$?'];
    for (const [name, sc] of [
      ['mem-root', shared],
      ['mem-65535', { ...shared, run_as_user: { value: '65535' }, run_as_group: { value: '65535' } }],
    ] as const) {
      const r = await output(env, pod, name, { command: openMem, linux: { security_context: sc } });
      assert.match(r.out, /Permission denied/, `${name}: ${r.out}`);
      assert.doesNotMatch(r.out, /rc=0/, name);
    }

    // An orphan of a sibling is re-parented to pause, which reaps it when it exits.
    const id = await createContainer(env, pod, 'orphans', {
      command: ['sh', '-c', 'sh -c "sleep 100000 & echo \\$! > /tmp/orphan.tmp && mv /tmp/orphan.tmp /tmp/orphan"; exec sleep 100000'],
      linux: { security_context: shared },
    });
    await env.client.call('StartContainer', { container_id: id });
    const exec = async (cmd: string) => (await env.client.call('ExecSync', { container_id: id, cmd: ['sh', '-c', cmd], timeout: '5' })).stdout.toString().trim();
    const orphan = await until('the orphan', async () => (await exec('cat /tmp/orphan 2>/dev/null')) || null);
    assert.match(await exec(`grep PPid /proc/${orphan}/status`), /^PPid:\s+1$/);
    await exec(`kill ${orphan}`);
    await until('the orphan reaped', async () => (await exec(`cat /proc/${orphan}/stat 2>/dev/null || echo reaped`)) === 'reaped');
    await env.client.call('StopContainer', { container_id: id, timeout: '0' });
  });
});

test('ExecSync: output and exit code; a timeout kills the command and says so', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const id = await createContainer(env, pod, 'target', { command: ['sleep', '60'] });
    await env.client.call('StartContainer', { container_id: id });
    const r = await env.client.call('ExecSync', { container_id: id, cmd: ['sh', '-c', 'echo out; echo err >&2; exit 4'], timeout: '5' });
    assert.equal(r.stdout.toString(), 'out\n');
    assert.equal(r.stderr.toString(), 'err\n');
    assert.equal(r.exit_code, 4);
    await assert.rejects(env.client.call('ExecSync', { container_id: id, cmd: ['sleep', '10'], timeout: '1' }), (e: ServiceError) => {
      assert.equal(e.code, Status.DEADLINE_EXCEEDED);
      assert.match(e.details, /timed out after 1s/);
      return true;
    });
    const ps = await env.client.call('ExecSync', { container_id: id, cmd: ['ps', '-o', 'args'], timeout: '5' });
    assert.doesNotMatch(ps.stdout.toString(), /sleep 10/);
  });
});

test('mounts: a read-only host dir; /etc/hosts and resolv.conf from the sandbox; resources update live', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
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
    assert.equal(await memoryLimitOf(cgroupPath), String(64 * 1024 * 1024));
    assert.equal(st.status?.resources?.linux?.memory_limit_in_bytes, String(64 * 1024 * 1024));

    const stats = (await env.client.call('ContainerStats', { container_id: id })).stats!;
    assert.ok(Number(stats.memory?.working_set_bytes?.value) > 0);
    assert.ok(stats.writable_layer?.used_bytes !== null);
    const listed = await env.client.call('ListContainerStats', { filter: { pod_sandbox_id: pod.sandboxId } });
    assert.deepEqual(
      listed.stats.map((x) => x.attributes?.id),
      [id],
    );

    const descriptors = await env.client.call('ListMetricDescriptors', {});
    assert.ok(descriptors.descriptors.some((d) => d.name === 'container_memory_working_set_bytes'));
    const podMetrics = (await env.client.call('ListPodSandboxMetrics', {})).pod_metrics.find((p) => p.pod_sandbox_id === pod.sandboxId)!;
    const ws = podMetrics.container_metrics.find((c) => c.container_id === id)?.metrics.find((m) => m.name === 'container_memory_working_set_bytes');
    assert.ok(Number(ws?.value?.value) > 0);
  });
});

test('GetContainerEvents sees created, started, stopped, deleted in order', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const events: { id: string; type: string }[] = [];
    const call = env.client.openStream('GetContainerEvents', {});
    call.on('data', (e: { container_id: string; container_event_type: string }) => events.push({ id: e.container_id, type: e.container_event_type }));
    call.on('error', () => {});
    // The stream is subscribed once it carries an event: make warm-up events until one comes.
    for (let i = 0; events.length === 0; i++) {
      await createContainer(env, pod, `warm${i}`, { command: ['true'] });
      await until('a first event', async () => events.length > 0, 2000).catch(() => {});
    }
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
  });
});

/** Five containers printing a counter every 10 ms, started. */
async function startCounters(env: PodEnv, pod: { sandboxId: string; sandboxConfig: object }): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const id = await createContainer(env, pod, `counter${i}`, { command: counter });
    await env.client.call('StartContainer', { container_id: id });
    ids.push(id);
  }
  return ids;
}

function assertConsecutive(values: number[], what: string): void {
  assert.ok(values.length > 10, `${what}: ${values.length} values`);
  for (let i = 0; i < values.length; i++) assert.equal(values[i], i, `${what}: value ${i} is ${values[i]} (gap or duplicate)`);
}

/** A process has exited: it is a zombie or already reaped (gone from /proc). */
function hasExited(pid: number): boolean {
  try {
    // The state is the field after the command, which is in parentheses and may hold spaces.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

test('nodecri restart keeps every container and every log line; an exit during the switch keeps its code', async () => {
  // The handoff stalls (NODECRI_FAULTS) once the old image has stopped watching exits: the
  // test makes a container exit inside that stall, so that only the new image can tell it.
  await withPodEnv({ removePods: true, env: { NODECRI_FAULTS: 'delay:handoff=3000' } }, async (env) => {
    const pod = await runPod(env);
    const ids = await startCounters(env, pod);
    // exits with 5 when told so by SIGUSR1 (a trap: it is the pid 1 of its namespace)
    const five = await createContainer(env, pod, 'five', { command: ['sh', '-c', 'trap "exit 5" USR1; while :; do sleep 0.05; done'] });
    await env.client.call('StartContainer', { container_id: five });
    const fivePid = (JSON.parse((await env.client.call('ContainerStatus', { container_id: five, verbose: true })).info.info) as { pid: number }).pid;
    const logPaths = await Promise.all(ids.map(async (id) => (await env.client.call('ContainerStatus', { container_id: id })).status!.log_path));
    await until('the counters to log', async () => logPaths.every((p) => counterValues(p).length > 10));
    const pid = env.daemon.proc.pid;
    // when the daemon logged `msg` (its log's time is an ISO string), in ms since the epoch
    const loggedAt = (msg: string): number | undefined => {
      const l = env.daemon.logs.find((x) => x.msg === msg);
      return l === undefined ? undefined : typeof l.time === 'number' ? l.time : Date.parse(String(l.time));
    };

    const restarted = env.restart('graceful');
    await until('the handoff to stall', async () => env.daemon.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('fault injection: the event loop stalls')), 30_000);
    process.kill(fivePid, 'SIGUSR1');
    await until('five to exit', async () => hasExited(fivePid));
    const exitSeenAt = Date.now();
    await restarted;
    assert.equal(env.daemon.proc.exitCode, null, 'the daemon process lives on');
    const reexec = loggedAt('re-executing');
    assert.ok(reexec !== undefined && !Number.isNaN(reexec), 'the restart went through the handoff');
    // The old image logs "re-executing" after the stall: the exit was seen before it, so it
    // fell between the old image's last watch and the new image's first.
    assert.ok(exitSeenAt <= reexec, `five exited at ${exitSeenAt} ms, not before the re-exec at ${reexec} ms`);

    const st5 = await waitExited(env, five);
    assert.equal(st5.exit_code, 5);
    assert.equal(st5.reason, 'Error');
    // Recorded by the new image: its finish time is after the old image's last log line.
    assert.ok(BigInt(st5.finished_at) > BigInt(reexec) * 1_000_000n, `five finished at ${st5.finished_at} ns, the old image re-executed at ${reexec} ms`);
    for (const id of ids) assert.equal((await env.client.call('ContainerStatus', { container_id: id })).status?.state, 'CONTAINER_RUNNING');
    // The counters go on logging under the new image.
    const counted = logPaths.map((p) => counterValues(p).length);
    await until('the counters to log on', async () => logPaths.every((p, i) => counterValues(p).length > counted[i] + 10));
    for (const id of ids) await env.client.call('StopContainer', { container_id: id, timeout: '0' });
    for (const [i, id] of ids.entries()) {
      const st = (await env.client.call('ContainerStatus', { container_id: id })).status!;
      assertConsecutive(counterValues(st.log_path), `counter${i}`);
    }
    assert.equal(env.daemon.proc.pid, pid);
  });
});

test('after kill -9 and a new start the containers still run and their logs go on', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const ids = await startCounters(env, pod);
    const logPaths = await Promise.all(ids.map(async (id) => (await env.client.call('ContainerStatus', { container_id: id })).status!.log_path));
    await until('the counters to log', async () => logPaths.every((p) => counterValues(p).length > 10));
    const before = logPaths.map((p) => counterValues(p).length);
    await env.restart('kill');
    for (const id of ids) assert.equal((await env.client.call('ContainerStatus', { container_id: id })).status?.state, 'CONTAINER_RUNNING');
    for (const [i, id] of ids.entries()) {
      const logPath = (await env.client.call('ContainerStatus', { container_id: id })).status!.log_path;
      await until(`counter${i} to go on past ${before[i] + 20}`, async () => counterValues(logPath).length > before[i] + 20);
    }
    // The exit of a container that is no longer our child cannot be known: it says so.
    await env.client.call('StopContainer', { container_id: ids[0], timeout: '0' });
    const st = (await env.client.call('ContainerStatus', { container_id: ids[0] })).status!;
    assert.equal(st.state, 'CONTAINER_EXITED');
  });
});

test('bad input is a clear error and leaves nothing behind', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const { snapshot, diff } = await import('../helpers/leaks');
    const { cgroupDirsFor } = await import('../helpers/pod-env');
    const scope = {
      mountPrefixes: [env.dir],
      dirs: [path.join(env.daemon.root, 'containers'), path.join(env.daemon.runroot, 'containers')],
      cgroupDirs: cgroupDirsFor(env.cgroupParent),
    };
    const before = snapshot(scope);
    const base = { metadata: { name: 'bad', attempt: 0 }, image: { image: busyboxRef }, command: ['true'], log_path: 'bad.log' };
    // as /etc/shadow: what it holds must reach neither the status nor the log
    const secret = path.join(env.dir, 'shadow');
    fs.writeFileSync(secret, 'hunter2-secret:$6$salt$hash:19000:0:99999:7:::\n', { mode: 0o600 });
    const cases: Array<[string, object, Status, RegExp]> = [
      ['unknown sandbox', { pod_sandbox_id: 'f'.repeat(64), config: base }, Status.NOT_FOUND, /pod sandbox f+ not found/],
      ['unknown image', { pod_sandbox_id: pod.sandboxId, config: { ...base, image: { image: 'nosuch/image:1' } } }, Status.NOT_FOUND, /image nosuch\/image:1 is not present/],
      ['empty name', { pod_sandbox_id: pod.sandboxId, config: { ...base, metadata: { name: '' } } }, Status.INVALID_ARGUMENT, /config\.metadata\.name is empty/],
      [
        'missing host path',
        { pod_sandbox_id: pod.sandboxId, config: { ...base, mounts: [{ container_path: '/x', host_path: path.join(env.dir, 'nope') }] } },
        Status.INVALID_ARGUMENT,
        /nope/,
      ],
      [
        'absolute log path',
        { pod_sandbox_id: pod.sandboxId, config: { ...base, log_path: '/var/log/x.log' } },
        Status.INVALID_ARGUMENT,
        /config\.log_path "\/var\/log\/x\.log" must be relative/,
      ],
      ['log path escaping', { pod_sandbox_id: pod.sandboxId, config: { ...base, log_path: '../x.log' } }, Status.INVALID_ARGUMENT, /leaves the pod's log directory/],
      [
        'a Localhost seccomp profile that is a secret, not JSON',
        { pod_sandbox_id: pod.sandboxId, config: { ...base, linux: { security_context: { seccomp: { profile_type: 'Localhost', localhost_ref: secret } } } } },
        Status.INVALID_ARGUMENT,
        /^linux\.security_context\.seccomp\.localhost_ref: seccomp profile .*shadow is not valid JSON$/,
      ],
    ];
    for (const [what, req, code, message] of cases) {
      await assert.rejects(env.client.call('CreateContainer', req as never), (e: ServiceError) => {
        assert.equal(e.code, code, `${what}: ${e.details}`);
        assert.match(e.details, message, what);
        return true;
      });
    }
    assert.deepEqual(diff(before, snapshot(scope)), { mounts: [], files: [], cgroups: [], children: [] });
    assert.ok(!env.daemon.stderr().includes('hunter2'), 'the secret file reached the log');
    assert.equal((await env.client.call('ListContainers', {})).containers.length, 0);
    // The name was never kept: the good config creates fine.
    const ok = await createContainer(env, pod, 'bad', { command: ['true'], logPath: 'bad.log' });
    assert.match(ok, /^[0-9a-f]{64}$/);
    await env.client.call('RemoveContainer', { container_id: ok });
    await assert.rejects(env.client.call('StartContainer', { container_id: ok }), (e: ServiceError) => e.code === Status.NOT_FOUND);
  });
});

test('50 pods with a container each, created and started in parallel, all run and go away cleanly', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    // withPodEnv checks mounts, files, cgroups, links and IPs once the body is done.
    const pods = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const pod = await runPod(env);
        const id = await createContainer(env, pod, `c${i}`, { command: ['sleep', '600'] });
        await env.client.call('StartContainer', { container_id: id });
        return { pod, id };
      }),
    );
    const list = await env.client.call('ListContainers', { filter: { state: { state: 'CONTAINER_RUNNING' } } });
    assert.equal(list.containers.length, 50);
    await Promise.all(pods.map(({ pod }) => env.client.call('StopPodSandbox', { pod_sandbox_id: pod.sandboxId })));
    await Promise.all(pods.map(({ pod }) => env.client.call('RemovePodSandbox', { pod_sandbox_id: pod.sandboxId })));
    assert.equal((await env.client.call('ListContainers', {})).containers.length, 0);
    const daemonChildren = fs.readdirSync('/proc').filter((p) => {
      if (!/^\d+$/.test(p)) return false;
      try {
        const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        // the worker's children, and the keeper's but the worker
        return ppid === env.daemon.workerPid || (ppid === env.daemon.proc.pid && Number(p) !== env.daemon.workerPid);
      } catch {
        return false;
      }
    });
    assert.deepEqual(daemonChildren, [], 'the daemon has no child left');
  });
});
