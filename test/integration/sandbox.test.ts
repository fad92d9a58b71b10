/**
 * RunPodSandbox and friends through the gRPC API, for real: pinned namespaces, shm tmpfs,
 * the pod cgroup, and the network from Debian's bridge + host-local plugins with a conflist
 * the test writes. Every test checks that stop + remove (or a failed run) leaves nothing:
 * mounts, pins, cgroups, veths, IP allocations, files and names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { ipamAllocations } from '../helpers/cni';
import { podConfig } from '../helpers/pods';
import { withPodEnv } from '../helpers/pod-env';
import { cpuUsageNanosOf, memoryLimitOf } from '../helpers/cgroups';
import { mountTable } from '../helpers/mountinfo';

function netnsExec(pin: string, args: string[]): string {
  return execFileSync('nsenter', [`--net=${pin}`, ...args], { encoding: 'utf8' });
}

test('a pod gets an IP on the bridge, lo and eth0 up, shm of the asked size; stop and remove leave nothing', async () => {
  await withPodEnv({ image: false }, async ({ client, cni }) => {
    const config = podConfig({ annotations: { 'io.kubernetes.cri-o.ShmSize': '128Mi' }, labels: { app: 'web' } });
    const { pod_sandbox_id: id } = await client.call('RunPodSandbox', { config });
    assert.match(id, /^[0-9a-f]{64}$/);
    const st = await client.call('PodSandboxStatus', { pod_sandbox_id: id.slice(0, 12), verbose: true });
    assert.equal(st.status?.state, 'SANDBOX_READY');
    const ip = st.status!.network!.ip;
    assert.ok(ip.startsWith(cni.subnet.split('.').slice(0, 3).join('.')), `${ip} in ${cni.subnet}`);
    assert.equal(st.status?.linux?.namespaces?.options?.network, 'POD');
    const info = JSON.parse(st.info.info) as { pins: { net: string }; shm: { path: string } };
    const links = netnsExec(info.pins.net, ['ip', '-o', 'link']);
    assert.match(links, /lo: <LOOPBACK,UP,LOWER_UP>/);
    assert.match(links, /eth0@/);
    execFileSync('ping', ['-c', '1', '-W', '2', ip]);
    const df = execFileSync('df', ['-B1', '--output=size', info.shm.path], { encoding: 'utf8' }).split('\n')[1].trim();
    assert.equal(Number(df), 128 * 1024 * 1024);
    const shm = mountTable().find((m) => m.mountPoint === info.shm.path);
    assert.ok(shm, `${info.shm.path} is a mount point`);
    for (const o of ['nosuid', 'nodev', 'noexec']) assert.ok(shm.options.includes(o), `${info.shm.path} is ${o}: ${shm.options.join(',')}`);

    const list = await client.call('ListPodSandbox', { filter: { label_selector: { app: 'web' } } });
    assert.deepEqual(
      list.items.map((i) => i.id),
      [id],
    );
    assert.equal((await client.call('ListPodSandbox', { filter: { label_selector: { app: 'db' } } })).items.length, 0);
    assert.equal((await client.call('ListPodSandbox', { filter: { state: { state: 'SANDBOX_NOTREADY' } } })).items.length, 0);

    const streamed = await client.stream('StreamPodSandboxes', {});
    assert.deepEqual(
      streamed.flatMap((m) => m.pod_sandboxes.map((p) => p.id)),
      [id],
    );

    // Stats: cgroup numbers and the pod's traffic (the ping above) from its host veth.
    const stats = (await client.call('PodSandboxStats', { pod_sandbox_id: id })).stats!;
    assert.equal(stats.attributes?.id, id);
    // Both are there, as decimal counts; the CPU time is the pod cgroup's own counter (which
    // only grows: read after the call, the kernel's is at least what the call said).
    assert.match(stats.linux?.memory?.usage_bytes?.value ?? 'missing', /^\d+$/, `memory ${JSON.stringify(stats.linux?.memory)}`);
    assert.match(stats.linux?.cpu?.usage_core_nano_seconds?.value ?? 'missing', /^\d+$/, `cpu ${JSON.stringify(stats.linux?.cpu)}`);
    const podCgroup = (JSON.parse(st.info.info) as { cgroup: { path: string } }).cgroup.path;
    assert.ok(BigInt(stats.linux!.cpu!.usage_core_nano_seconds!.value) <= (await cpuUsageNanosOf(podCgroup)));
    assert.equal(stats.linux?.network?.default_interface?.name, 'eth0');
    assert.ok(Number(stats.linux?.network?.default_interface?.rx_bytes?.value) > 0);
    assert.ok(Number(stats.linux?.network?.default_interface?.tx_bytes?.value) > 0);
    const listed = await client.call('ListPodSandboxStats', { filter: { label_selector: { app: 'web' } } });
    assert.deepEqual(
      listed.stats.map((x) => x.attributes?.id),
      [id],
    );

    // New pod resources reach the pod cgroup.
    const cgroupPath = (JSON.parse(st.info.info) as { cgroup: { path: string } }).cgroup.path;
    await client.call('UpdatePodSandboxResources', { pod_sandbox_id: id, resources: { memory_limit_in_bytes: String(256 * 1024 * 1024) } });
    assert.equal(await memoryLimitOf(cgroupPath), String(256 * 1024 * 1024));

    await client.call('StopPodSandbox', { pod_sandbox_id: id });
    await client.call('StopPodSandbox', { pod_sandbox_id: id });
    assert.equal((await client.call('PodSandboxStatus', { pod_sandbox_id: id })).status?.state, 'SANDBOX_NOTREADY');
    assert.deepEqual(ipamAllocations(cni), []);
    await client.call('RemovePodSandbox', { pod_sandbox_id: id });
    await client.call('RemovePodSandbox', { pod_sandbox_id: id });
    await client.call('StopPodSandbox', { pod_sandbox_id: id });
    await assert.rejects(client.call('PodSandboxStatus', { pod_sandbox_id: id }), (e: ServiceError) => e.code === Status.NOT_FOUND);
    // The name is free again: the same pod can run anew.
    const again = await client.call('RunPodSandbox', { config });
    assert.notEqual(again.pod_sandbox_id, id);
    await client.call('RemovePodSandbox', { pod_sandbox_id: again.pod_sandbox_id });
  });
});

test('a host-network pod has no netns pin and no CNI call', async () => {
  await withPodEnv({ image: false }, async ({ client, cni }) => {
    const { pod_sandbox_id: id } = await client.call('RunPodSandbox', { config: podConfig({ hostNetwork: true }) });
    const st = await client.call('PodSandboxStatus', { pod_sandbox_id: id, verbose: true });
    assert.equal(st.status?.linux?.namespaces?.options?.network, 'NODE');
    assert.equal(st.status?.network?.ip, '');
    const info = JSON.parse(st.info.info) as { pins: { net: string | null; uts: string | null; ipc: string | null } };
    assert.equal(info.pins.net, null);
    assert.equal(info.pins.uts, null);
    assert.ok(info.pins.ipc);
    assert.deepEqual(ipamAllocations(cni), []);
    await client.call('RemovePodSandbox', { pod_sandbox_id: id });
  });
});

test('a pod sharing one PID namespace runs pause as its PID 1 in the pod namespaces', async () => {
  await withPodEnv({ image: false }, async ({ client }) => {
    const { pod_sandbox_id: id } = await client.call('RunPodSandbox', { config: podConfig({ pid: 'POD' }) });
    const st = await client.call('PodSandboxStatus', { pod_sandbox_id: id, verbose: true });
    const info = JSON.parse(st.info.info) as { pins: { net: string; ipc: string }; infra: { pid: number } };
    const pid = info.infra.pid;
    assert.equal(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'), '/pause\0');
    const inode = (p: string) => fs.statSync(p).ino;
    assert.equal(inode(`/proc/${pid}/ns/net`), inode(info.pins.net));
    assert.equal(inode(`/proc/${pid}/ns/ipc`), inode(info.pins.ipc));
    assert.notEqual(inode(`/proc/${pid}/ns/pid`), inode('/proc/self/ns/pid'));
    // pid 1 inside its own PID namespace
    assert.match(fs.readFileSync(`/proc/${pid}/status`, 'utf8'), /NSpid:\s+\d+\s+1\n/);
    await client.call('StopPodSandbox', { pod_sandbox_id: id });
    assert.equal(fs.existsSync(`/proc/${pid}`), false);
    await client.call('RemovePodSandbox', { pod_sandbox_id: id });
  });
});

test('after kill -9, a pause pid now naming another process is never adopted (nor killed); a live pause is', async () => {
  await withPodEnv({ image: false }, async (env) => {
    const run = async () => {
      const { pod_sandbox_id: id } = await env.client.call('RunPodSandbox', { config: podConfig({ pid: 'POD' }) });
      const st = await env.client.call('PodSandboxStatus', { pod_sandbox_id: id, verbose: true });
      return { id, pid: (JSON.parse(st.info.info) as { infra: { pid: number } }).infra.pid };
    };
    const reused = await run();
    const kept = await run();
    const gone = (pid: number) => !fs.existsSync(`/proc/${pid}`);
    // after kill -9 the pause is no longer the daemon's child: its new parent reaps it
    const dead = (pid: number) => {
      try {
        return /^\d+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return true;
      }
    };
    // While the daemon is down, the first pod's pause dies and its pid is "reused": the
    // record now names a sleep (with the start time recorded for the pause).
    const sleep = spawn('sleep', ['1000'], { stdio: 'ignore' });
    const sleepExited = new Promise<void>((resolve) => sleep.once('exit', () => resolve()));
    try {
      await env.restart('kill', async () => {
        process.kill(reused.pid, 'SIGKILL');
        while (!gone(reused.pid)) await new Promise((r) => setTimeout(r, 10));
        const file = path.join(env.daemon.root, 'sandboxes', `${reused.id}.json`);
        const record = JSON.parse(fs.readFileSync(file, 'utf8')) as { infra: { pid: number } };
        record.infra.pid = sleep.pid!;
        fs.writeFileSync(file, JSON.stringify(record));
      });
      const status = async (id: string) => (await env.client.call('PodSandboxStatus', { pod_sandbox_id: id })).status;
      assert.equal((await status(reused.id))?.state, 'SANDBOX_NOTREADY');
      assert.equal((await status(kept.id))?.state, 'SANDBOX_READY');
      for (const p of [reused, kept]) {
        await env.client.call('StopPodSandbox', { pod_sandbox_id: p.id });
        await env.client.call('RemovePodSandbox', { pod_sandbox_id: p.id });
      }
      // The process that got the pid was never signalled; the adopted pause was stopped.
      assert.equal(sleep.exitCode, null);
      assert.equal(sleep.signalCode, null);
      assert.ok(!dead(sleep.pid!));
      for (const end = Date.now() + 10_000; !dead(kept.pid) && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
      assert.ok(dead(kept.pid), `the adopted pause ${kept.pid} was not stopped`);
    } finally {
      sleep.kill('SIGKILL');
      await sleepExited;
    }
  });
});

test('identical RunPodSandbox calls create one sandbox; 50 different pods run and tear down in parallel', async () => {
  await withPodEnv({ image: false }, async ({ client, cni }) => {
    const config = podConfig();
    const ids = await Promise.all(Array.from({ length: 20 }, () => client.call('RunPodSandbox', { config })));
    assert.equal(new Set(ids.map((r) => r.pod_sandbox_id)).size, 1);
    const retry = await client.call('RunPodSandbox', { config });
    assert.equal(retry.pod_sandbox_id, ids[0].pod_sandbox_id);
    assert.equal((await client.call('ListPodSandbox', {})).items.length, 1);
    await client.call('RemovePodSandbox', { pod_sandbox_id: retry.pod_sandbox_id });

    const many = await Promise.all(Array.from({ length: 50 }, () => client.call('RunPodSandbox', { config: podConfig() })));
    const list = await client.call('ListPodSandbox', {});
    assert.equal(list.items.filter((i) => i.state === 'SANDBOX_READY').length, 50);
    assert.equal(ipamAllocations(cni).length, 50);
    await Promise.all(many.map((r) => client.call('StopPodSandbox', { pod_sandbox_id: r.pod_sandbox_id })));
    await Promise.all(many.map((r) => client.call('RemovePodSandbox', { pod_sandbox_id: r.pod_sandbox_id })));
    assert.equal((await client.call('ListPodSandbox', {})).items.length, 0);
  });
});

test('bad input is INVALID_ARGUMENT naming the field, and leaves nothing', async () => {
  await withPodEnv({ image: false }, async ({ client }) => {
    const good = podConfig();
    const cases: Array<[string, object, RegExp]> = [
      ['no metadata', { config: { ...good, metadata: undefined } }, /config\.metadata is missing/],
      ['no name', { config: { ...good, metadata: { ...good.metadata, name: '' } } }, /config\.metadata\.name is empty/],
      ['no namespace', { config: { ...good, metadata: { ...good.metadata, namespace: '' } } }, /config\.metadata\.namespace is empty/],
      ['no uid', { config: { ...good, metadata: { ...good.metadata, uid: '' } } }, /config\.metadata\.uid is empty/],
      ['unknown handler', { config: good, runtime_handler: 'kata' }, /runtime handler "kata" is not configured/],
      ['bad shm', { config: podConfig({ annotations: { 'io.kubernetes.cri-o.ShmSize': '12 bananas' } }) }, /io\.kubernetes\.cri-o\.ShmSize: invalid quantity/],
      ['relative log dir', { config: podConfig({ logDirectory: 'var/log/pods' }) }, /config\.log_directory "var\/log\/pods" is not an absolute path/],
      ['bad sysctl', { config: podConfig({ sysctls: { 'kernel.hostname': 'x' } }) }, /kernel\.hostname/],
    ];
    for (const [what, req, message] of cases) {
      await assert.rejects(client.call('RunPodSandbox', req as never), (e: ServiceError) => {
        assert.equal(e.code, Status.INVALID_ARGUMENT, `${what}: ${e.details}`);
        assert.match(e.details, message, what);
        return true;
      });
    }
    assert.equal((await client.call('ListPodSandbox', {})).items.length, 0);
  });
});

test('a failing CNI plugin fails the call and leaves nothing, the IP released', async () => {
  await withPodEnv({ image: false, failingPlugin: true }, async ({ client, cni }) => {
    await assert.rejects(client.call('RunPodSandbox', { config: podConfig() }), (e: ServiceError) => {
      assert.match(e.details, /nodecri-test-fail ADD failed: injected failure/);
      return true;
    });
    assert.deepEqual(ipamAllocations(cni), []);
    assert.equal((await client.call('ListPodSandbox', {})).items.length, 0);
  });
});

test('no CNI config: the call waits briefly then fails with NetworkPluginNotReady', async () => {
  await withPodEnv({ image: false, noCni: true, cniWait: 1 }, async ({ client }) => {
    const t0 = Date.now();
    await assert.rejects(client.call('RunPodSandbox', { config: podConfig() }), (e: ServiceError) => {
      assert.match(e.details, /NetworkPluginNotReady/);
      return true;
    });
    assert.ok(Date.now() - t0 >= 900);
  });
});

test('kill -9 with 3 pods: after restart they are READY with the same IPs and tear down cleanly', async () => {
  await withPodEnv({ image: false }, async (env) => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await env.client.call('RunPodSandbox', { config: podConfig() })).pod_sandbox_id);
    const ipsBefore = await Promise.all(ids.map(async (id) => (await env.client.call('PodSandboxStatus', { pod_sandbox_id: id })).status!.network!.ip));
    await env.restart('kill');
    const list = await env.client.call('ListPodSandbox', {});
    assert.deepEqual(list.items.map((i) => i.id).sort(), [...ids].sort());
    for (const [i, id] of ids.entries()) {
      const st = await env.client.call('PodSandboxStatus', { pod_sandbox_id: id });
      assert.equal(st.status?.state, 'SANDBOX_READY');
      assert.equal(st.status?.network?.ip, ipsBefore[i]);
    }
    for (const id of ids) {
      await env.client.call('StopPodSandbox', { pod_sandbox_id: id });
      await env.client.call('RemovePodSandbox', { pod_sandbox_id: id });
    }
  });
});
