/**
 * The kill -9 loop (issue 9): K times, start P pods in parallel (each sharing a PID
 * namespace, so with a pause process), SIGKILL the daemon while they start, start it
 * again. Then every pod the API lists is removed through the API, and what is left is
 * counted by kind: sandboxes the API does not list, mounts (pins, shm, rootfs), cgroups,
 * processes, host veths on the test bridge, host-local IPs, state entries under root and
 * runroot, CNI cache files. A runtime that is crash-consistent leaves 0 of every kind.
 *
 * Usage: node dist/bench/crash-loop.js [K=30] [P=5]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startPodEnv, cgroupDirsFor } from '../test/helpers/pod-env';
import { bridgePorts, ipamAllocations } from '../test/helpers/cni';
import { processesNaming } from '../test/helpers/leaks';
import { podConfig } from '../test/helpers/pods';
import { readMountInfo } from '../src/linux/mountinfo';

const K = Number(process.argv[2] ?? 30);
const P = Number(process.argv[3] ?? 5);

function walk(dir: string, out: string[]): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) walk(p, out);
  }
  return out;
}

function entries(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function cgroupsUnder(parent: string): number {
  let n = 0;
  for (const d of cgroupDirsFor(parent)) {
    try {
      n += walk(d, []).filter((p) => fs.statSync(p).isDirectory()).length;
    } catch {
      // hierarchy without it
    }
  }
  return n;
}

async function main(): Promise<void> {
  const env = await startPodEnv();
  try {
    let started = 0;
    let failed = 0;
    for (let k = 0; k < K; k++) {
      const calls = Array.from({ length: P }, () =>
        env.client.call('RunPodSandbox', { config: podConfig({ pid: 'POD' }) }).then(
          () => void started++,
          () => void failed++,
        ),
      );
      // Kill somewhere inside the start-ups: 5 pods in parallel take 50-300 ms here.
      await new Promise((r) => setTimeout(r, 10 + Math.floor(Math.random() * 250)));
      env.daemon.proc.kill('SIGKILL');
      await Promise.all(calls);
      await env.replaceDaemon();
    }
    const listed = (await env.client.call('ListPodSandbox', {})).items.length;
    await env.removePods();
    const runroot = env.daemon.runroot;
    const root = env.daemon.root;
    const mounts = (await readMountInfo()).filter((m) => m.mountPoint.startsWith(env.dir)).length;
    const stateEntries = [path.join(runroot, 'sandboxes'), path.join(root, 'sandboxes'), path.join(runroot, 'containers'), path.join(root, 'containers'), path.join(runroot, 'ops')]
      .map((d) => entries(d).length)
      .reduce((a, b) => a + b, 0);
    const left = {
      sandboxesUnlisted: entries(path.join(runroot, 'sandboxes')).length,
      mounts,
      cgroups: cgroupsUnder(env.cgroupParent),
      processes: processesNaming(env.dir, [env.daemon.proc.pid ?? 0, env.daemon.workerPid]).length,
      veths: bridgePorts(env.cni.bridge).length,
      ips: ipamAllocations(env.cni).length,
      stateEntries,
      cniCache: entries(path.join(root, 'cni-cache')).length,
    };
    process.stdout.write(`${K} kills during ${P} parallel RunPodSandbox each: ${started} calls answered OK, ${failed} cut off, ${listed} pods listed after the last restart\n`);
    process.stdout.write(`left after removing every listed pod:\n${JSON.stringify(left, null, 1)}\n`);
    const cache = entries(path.join(root, 'cni-cache'));
    if (cache.length > 0) process.stdout.write(`CNI cache entries left: ${cache.join(' ')}\n`);
  } finally {
    // What the runtime leaves, the bench removes, so that a run leaves a clean machine.
    execFileSync('sh', ['-c', `grep -o '${env.dir}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`], { stdio: 'ignore' });
    for (const d of cgroupDirsFor(env.cgroupParent)) {
      try {
        execFileSync('sh', ['-c', `find ${d} -depth -type d | while read c; do cat $c/cgroup.procs 2>/dev/null | xargs -r kill -9; rmdir $c 2>/dev/null || true; done`], {
          stdio: 'ignore',
        });
      } catch {
        // not there
      }
    }
    await env.cleanup().catch((e: unknown) => process.stderr.write(`cleanup: ${String(e)}\n`));
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
