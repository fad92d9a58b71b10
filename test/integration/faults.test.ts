/**
 * Faults give clear errors, never silent loss: a full log disk drops whole records only,
 * counts them per container and keeps the daemon's memory bounded; bad cgroup parents,
 * resources and over-long paths are INVALID_ARGUMENT naming the field and leave nothing;
 * pods sharing one cgroup_parent come and go without touching each other's cgroups.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { createContainer, logLines, until, type Pod } from '../helpers/containers';
import { diff, snapshot } from '../helpers/leaks';
import { busyboxRef, cgroupDirsFor, withPodEnv, type PodEnv } from '../helpers/pod-env';
import { podConfig } from '../helpers/pods';

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function runPodIn(env: PodEnv, logDirectory: string, cgroupParent = '', pid: 'POD' | 'CONTAINER' = 'CONTAINER'): Promise<Pod> {
  const config = { ...podConfig({ cgroupParent, pid }), log_directory: logDirectory };
  const { pod_sandbox_id } = await env.client.call('RunPodSandbox', { config });
  return { sandboxId: pod_sandbox_id, sandboxConfig: config };
}

test('a full log disk: whole records only, the dropped bytes counted per container, the daemon RSS bounded', async () => {
  await withPodEnv({ removePods: true, extraConfig: '[metrics]\nenabled = true\naddress = "127.0.0.1:0"' }, async (env) => {
    const logs = path.join(env.dir, 'small-logs');
    fs.mkdirSync(logs);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', logs]);
    try {
      const pod = await runPodIn(env, logs);
      // 500,000 lines of 99 bytes and a newline: 50 MB, 50 times what the disk holds.
      const lines = 500_000;
      const text = 'x'.repeat(99);
      const id = await createContainer(env, pod, 'writer', { command: ['sh', '-c', `yes ${text} | head -n ${lines}`], logPath: 'writer.log' });
      const pid = env.daemon.workerPid;
      const rssBefore = rssBytes(pid);
      let rssMax = rssBefore;
      const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssBytes(pid))), 25);
      try {
        await env.client.call('StartContainer', { container_id: id });
        const st = await until(
          'the writer to exit',
          async () => {
            const s = (await env.client.call('ContainerStatus', { container_id: id })).status!;
            return s.state === 'CONTAINER_EXITED' ? s : null;
          },
          240_000,
        );
        assert.equal(st.exit_code, 0);
      } finally {
        clearInterval(sampler);
      }
      const file = path.join(logs, 'writer.log');
      const raw = fs.readFileSync(file, 'utf8');
      assert.ok(raw.endsWith('\n'), 'the log ends with a whole record');
      const kept = logLines(file); // asserts that every line is a whole CRI record
      for (const l of kept) assert.deepEqual(l, { stream: 'stdout', tag: 'F', text });
      assert.ok(kept.length > 1000 && kept.length < lines, `${kept.length} records kept`);

      const metrics = await (await fetch(`http://${env.daemon.metricsAddress}/metrics`)).text();
      const m = new RegExp(`^nodecri_container_log_dropped_bytes_total\\{container_id="${id}"\\} (\\d+)$`, 'm').exec(metrics);
      assert.ok(m, 'the dropped-bytes series of the container');
      // Every byte the container wrote is either in a kept record or counted as dropped.
      assert.equal(Number(m[1]), (lines - kept.length) * text.length);

      const warnings = env.daemon.logs.filter((l) => l.containerId === id && /cannot be written/.test(String(l.msg)));
      assert.ok(warnings.length >= 1, 'a warning says the log lost output');
      const reported = warnings.reduce((n, w) => n + Number(w.droppedBytes), 0);
      assert.equal(reported, Number(m[1]), 'the warnings add up to the metric');
      assert.ok(warnings.length <= 10, `${warnings.length} warnings: rate-limited`);

      // A resource bound, not a timing: 50 MB through the daemon must not be buffered.
      assert.ok(rssMax - rssBefore < 100 * 1024 * 1024, `daemon RSS grew by ${((rssMax - rssBefore) / 1048576).toFixed(1)} MiB`);
      assert.ok(rssMax < 200 * 1024 * 1024, `daemon RSS peaked at ${(rssMax / 1048576).toFixed(1)} MiB`);
      process.stderr.write(
        `# full log disk: ${kept.length} records kept, ${m[1]} bytes dropped, ${warnings.length} warnings, daemon RSS ${(rssBefore / 1048576).toFixed(1)} -> max ${(rssMax / 1048576).toFixed(1)} MiB\n`,
      );

      await env.client.call('RemoveContainer', { container_id: id });
      assert.doesNotMatch(await (await fetch(`http://${env.daemon.metricsAddress}/metrics`)).text(), new RegExp(id), 'the series goes with the container');
    } finally {
      try {
        execFileSync('umount', [logs]);
      } catch {
        execFileSync('umount', ['-l', logs]);
      }
    }
  });
});

test('5 pods under one cgroup_parent that did not exist: each stopped and removed while the others run', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    // kubelet's pod cgroup, under the test's own parent; nothing has made it yet
    const parent = `${env.cgroupParent}/shared-parent`;
    const existing = () => cgroupDirsFor(parent).filter((d) => fs.existsSync(d));
    assert.deepEqual(existing(), []);
    const pods: Array<{ pod: Pod; container: string; pid: number }> = [];
    for (let i = 0; i < 5; i++) {
      // every other pod shares one PID namespace, so has an infra cgroup of its own too
      const pod = await runPodIn(env, path.join(env.logDir, `pod${i}`), parent, i % 2 === 0 ? 'POD' : 'CONTAINER');
      const container = await createContainer(env, pod, 'sleeper', { command: ['sleep', '3600'], logPath: 'sleeper.log' });
      await env.client.call('StartContainer', { container_id: container });
      const st = await env.client.call('ContainerStatus', { container_id: container, verbose: true });
      pods.push({ pod, container, pid: (JSON.parse(st.info.info) as { pid: number }).pid });
    }
    assert.ok(existing().length > 0, 'the parent was made');
    const alive = (pid: number) => fs.existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    for (let i = 0; i < pods.length; i++) {
      await env.client.call('StopPodSandbox', { pod_sandbox_id: pods[i].pod.sandboxId });
      await env.client.call('RemovePodSandbox', { pod_sandbox_id: pods[i].pod.sandboxId });
      for (const other of pods.slice(i + 1)) {
        const st = (await env.client.call('ContainerStatus', { container_id: other.container })).status!;
        assert.equal(st.state, 'CONTAINER_RUNNING', `pod ${i} removed: ${other.container} still runs`);
        assert.ok(alive(other.pid), `pod ${i} removed: pid ${other.pid} still alive`);
        const r = await env.client.call('ExecSync', { container_id: other.container, cmd: ['true'], timeout: 10 });
        assert.equal(r.exit_code, 0);
      }
    }
    assert.equal((await env.client.call('ListPodSandbox', {})).items.length, 0);
    // Only kubelet's parent is left, empty: nothing of the pods is in it.
    for (const d of existing()) {
      const children = fs
        .readdirSync(d, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
      assert.deepEqual(children, [], `${d} is empty`);
      fs.rmdirSync(d);
    }
  });
});

test('a record from before (the first pod "created" the shared cgroup_parent) is removed without touching the other pods', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const parent = `${env.cgroupParent}/legacy-parent`;
    const first = await runPodIn(env, path.join(env.logDir, 'first'), parent, 'POD');
    const second = await runPodIn(env, path.join(env.logDir, 'second'), parent, 'POD');
    const container = await createContainer(env, second, 'sleeper', { command: ['sleep', '3600'], logPath: 'sleeper.log' });
    await env.client.call('StartContainer', { container_id: container });
    // What an older nodecri wrote for the pod that found the parent missing.
    await env.restart('kill', () => {
      const file = path.join(env.daemon.root, 'sandboxes', `${first.sandboxId}.json`);
      const r = JSON.parse(fs.readFileSync(file, 'utf8')) as { cgroup: { path: string; created: boolean } };
      assert.deepEqual(r.cgroup, { path: parent, created: false });
      r.cgroup.created = true;
      fs.writeFileSync(file, JSON.stringify(r));
    });
    await env.client.call('RemovePodSandbox', { pod_sandbox_id: first.sandboxId });
    assert.equal((await env.client.call('ContainerStatus', { container_id: container })).status!.state, 'CONTAINER_RUNNING');
    assert.equal((await env.client.call('ExecSync', { container_id: container, cmd: ['true'], timeout: 10 })).exit_code, 0);
    await env.client.call('RemovePodSandbox', { pod_sandbox_id: second.sandboxId });
    for (const d of cgroupDirsFor(parent).filter((x) => fs.existsSync(x))) {
      assert.deepEqual(
        fs.readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()),
        [],
        `${d} is empty`,
      );
      fs.rmdirSync(d);
    }
  });
});

/** A cgroup path of `bytes` bytes under `parent`, in components of at most 200. */
function longCgroupPath(parent: string, bytes: number): string {
  let p = parent;
  while (p.length < bytes) p += `/${'x'.repeat(Math.min(200, bytes - p.length - 1))}`;
  return p;
}

/** What a refused call must not leave: mounts, state files, cgroups, children. */
function leakScope(env: PodEnv) {
  return {
    mountPrefixes: [env.dir],
    dirs: ['sandboxes', 'containers'].flatMap((d) => [path.join(env.daemon.root, d), path.join(env.daemon.runroot, d)]),
    cgroupDirs: cgroupDirsFor(env.cgroupParent),
  };
}

/** The leaks since `before`; the daemon itself may be running (R) where it slept (S). */
function leaksSince(env: PodEnv, scope: ReturnType<typeof leakScope>, before: ReturnType<typeof snapshot>) {
  const d = diff(before, snapshot(scope));
  return { ...d, children: d.children.filter((c) => !c.startsWith(`${env.daemon.proc.pid} `)) };
}

async function refused(what: string, call: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(
    call,
    (e: ServiceError) => {
      assert.ok(e.code !== undefined, `${what}: ${String(e)}`);
      assert.equal(e.code, Status.INVALID_ARGUMENT, `${what}: ${e.details}`);
      assert.match(e.details, message, what);
      return true;
    },
    what,
  );
}

test('bad cgroup parents and over-long log directories are INVALID_ARGUMENT naming the field, and leave nothing', async () => {
  await withPodEnv({ image: false }, async (env) => {
    const scope = leakScope(env);
    const before = snapshot(scope);
    const P = env.cgroupParent;
    const cases: Array<[string, string, RegExp]> = [
      ['relative', 'kubepods/pod1', /^linux\.cgroup_parent "kubepods\/pod1" is not absolute/],
      ['a systemd slice', 'kubepods-besteffort-pod1.slice', /^linux\.cgroup_parent "kubepods-besteffort-pod1\.slice" is a systemd slice, but the cgroup driver is cgroupfs/],
      ['an absolute slice', '/kubepods.slice/kubepods-pod1.slice', /^linux\.cgroup_parent .* is a systemd slice/],
      ['a filesystem path', '/sys/fs/cgroup/memory/kubepods', /^linux\.cgroup_parent .* is a filesystem path under the cgroup mounts/],
      ['..', `${P}/a/../../b`, /^linux\.cgroup_parent .*: invalid cgroup path/],
      ['a newline', `${P}/a\nb`, /^linux\.cgroup_parent .*control character/],
      ['a component over NAME_MAX', `${P}/${'x'.repeat(256)}`, /^linux\.cgroup_parent .*over NAME_MAX \(255\)/],
      // 3,960 bytes: the parent's own files fit, its pods' cgroups' would not
      ['over PATH_MAX with the pod cgroups', longCgroupPath(P, 3960), /^linux\.cgroup_parent .*cgroup path too long: .*over PATH_MAX/],
    ];
    for (const [what, parent, message] of cases) {
      await refused(what, env.client.call('RunPodSandbox', { config: podConfig({ cgroupParent: parent }) }), message);
    }
    await refused(
      'log directory over PATH_MAX',
      env.client.call('RunPodSandbox', { config: { ...podConfig(), log_directory: `/var/log/pods/${'x'.repeat(4100)}` } }),
      /^config\.log_directory ".*" is \d+ bytes, over PATH_MAX \(4096\)$/,
    );
    // Pod resources the kernel refuses once the pod cgroup exists: named, and the cgroup goes.
    const pod = podConfig();
    await refused(
      'pod CPUs that are not there',
      env.client.call('RunPodSandbox', { config: { ...pod, linux: { ...pod.linux, resources: { cpuset_cpus: '4000' } } } } as never),
      /^linux\.resources\.cpuset_cpus: "4000" refused by the kernel for cpuset\.cpus/,
    );
    assert.equal((await env.client.call('ListPodSandbox', {})).items.length, 0);
    assert.deepEqual(leaksSince(env, scope, before), { mounts: [], files: [], cgroups: [], children: [] });
    // Nothing was made for the refused parents either.
    for (const [, parent] of cases) if (parent.startsWith(P)) for (const d of cgroupDirsFor(parent)) assert.equal(fs.existsSync(d), false, d);
  });
});

test('bad resources, unified keys and over-long paths in CreateContainer are INVALID_ARGUMENT naming the field, and leave nothing', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPodIn(env, path.join(env.logDir, 'p'));
    const sleeper = await createContainer(env, pod, 'sleeper', { command: ['sleep', '3600'], logPath: 'sleeper.log' });
    await env.client.call('StartContainer', { container_id: sleeper });
    const scope = leakScope(env);
    const before = snapshot(scope);
    const base = { metadata: { name: 'bad', attempt: 0 }, image: { image: busyboxRef }, command: ['true'], log_path: 'bad.log' };
    const create = (extra: object) =>
      env.client.call('CreateContainer', { pod_sandbox_id: pod.sandboxId, sandbox_config: pod.sandboxConfig, config: { ...base, ...extra } } as never);
    const resources = (r: object) => ({ linux: { resources: r } });
    const cases: Array<[string, object, RegExp]> = [
      ['a cpu list', resources({ cpuset_cpus: '0-1;reboot' }), /^linux\.resources\.cpuset_cpus: "0-1;reboot" is not a cpu\/node list/],
      ['a backwards range', resources({ cpuset_cpus: '1-0' }), /^linux\.resources\.cpuset_cpus: "1-0": range 1-0 goes backwards$/],
      // syntax the kernel takes, CPUs it does not have: its refusal, named
      [
        'CPUs that are not there',
        resources({ cpuset_cpus: '4000-4001' }),
        /^linux\.resources\.cpuset_cpus: "4000-4001" refused by the kernel for cpuset\.cpus \(E(RANGE|INVAL)\)$/,
      ],
      ['memory nodes that are not there', resources({ cpuset_mems: '63' }), /^linux\.resources\.cpuset_mems: "63" refused by the kernel/],
      ['a unified key leaving the cgroup', resources({ unified: { '../memory.max': '1' } }), /^linux\.resources\.unified: key not allowed: "\.\.\/memory\.max"$/],
      ['a unified key with a slash', resources({ unified: { 'memory.max/x': '1' } }), /^linux\.resources\.unified: key not allowed/],
      ['a unified key the manager drives', resources({ unified: { 'cgroup.procs': '1' } }), /^linux\.resources\.unified: key not allowed: "cgroup\.procs"$/],
      [
        'a log path component over NAME_MAX',
        { log_path: `${'x'.repeat(300)}.log` },
        /^config\.log_path ".*": the log file ".*" has a component of 304 bytes, over NAME_MAX \(255\)$/,
      ],
      ['a log path over PATH_MAX', { log_path: `${`${'x'.repeat(200)}/`.repeat(21)}y.log` }, /^config\.log_path ".*": the log file ".*" is \d+ bytes, over PATH_MAX \(4096\)$/],
      [
        'a mount path over PATH_MAX',
        { mounts: [{ container_path: `/${'x'.repeat(200)}`.repeat(20), host_path: env.dir }] },
        /^mounts\[0\]: container_path ".*" is \d+ bytes where it is made, over PATH_MAX/,
      ],
      [
        'a mount path component over NAME_MAX',
        { mounts: [{ container_path: `/${'x'.repeat(256)}`, host_path: env.dir }] },
        /^mounts\[0\]: container_path ".*" has a component of 256 bytes/,
      ],
      ['a working dir over PATH_MAX', { working_dir: `/${'x'.repeat(4096)}` }, /^working_dir ".*" is 4097 bytes, over PATH_MAX/],
    ];
    for (const [what, extra, message] of cases) await refused(what, create(extra), message);
    assert.deepEqual(leaksSince(env, scope, before), { mounts: [], files: [], cgroups: [], children: [] });
    assert.deepEqual(
      (await env.client.call('ListContainers', {})).containers.map((c) => c.id),
      [sleeper],
    );
    // A live update with a bad value is named the same way, and the container runs on.
    await refused(
      'an update to CPUs that are not there',
      env.client.call('UpdateContainerResources', { container_id: sleeper, linux: { cpuset_cpus: '4000' } } as never),
      /^linux\.resources\.cpuset_cpus: "4000" refused by the kernel/,
    );
    assert.equal((await env.client.call('ContainerStatus', { container_id: sleeper })).status!.state, 'CONTAINER_RUNNING');
  });
});
