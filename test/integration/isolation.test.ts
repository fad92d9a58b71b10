/**
 * A container is hostile: from inside one, with the default capabilities, nothing of the
 * daemon is reachable. No process the container can see opens /proc/<pid>/mem for writing
 * or /proc/<pid>/exe unless it is one of the container's own programs, neither while an
 * ExecSync is being set up nor while a sibling container is created but not started in a
 * shared PID namespace; and what a container's setup changes (oom score, uid) never
 * reaches the daemon's own process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { podConfig } from '../helpers/pods';
import { withPodEnv } from '../helpers/pod-env';
import { createContainer, runPod } from '../helpers/containers';

// Lists every process this shell can see that it can look into while it runs something
// that is not a file of this container (a runtime's process before its execve is what
// this looks for): "exe PID TARGET" when /proc/PID/exe resolves, then "mem PID" when
// /proc/PID/mem opens for writing too (mem needs more than exe: a process whose exe does
// not resolve is out of reach). Races with exits and execs only ever hide a line.
const probeScript = `
id() { busybox stat -L -c %d:%i "$1" 2>/dev/null; }
probe() {
  for d in /proc/[0-9]*; do
    e=$(id "$d/exe")
    [ -z "$e" ] && continue  # not ours to look into (or gone)
    exe=$(readlink "$d/exe" 2>/dev/null)
    [ -z "$exe" ] || [ "$e" = "$(id "$exe")" ] && continue  # gone, or runs a file of ours
    echo "exe \${d#/proc/} $exe"
    ( exec 3<>"$d/mem" ) 2>/dev/null && echo "mem \${d#/proc/}"
  done
}
`;

test('a sibling created but not started in a shared PID namespace: its memory and exe are out of reach', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env, podConfig({ pid: 'POD' }));
    const prober = await createContainer(env, pod, 'prober', { command: ['sleep', '600'] });
    await env.client.call('StartContainer', { container_id: prober });
    // Parked before its exec, waiting for StartContainer, in the pod's PID namespace.
    await createContainer(env, pod, 'parked', { command: ['sleep', '600'] });
    const r = await env.client.call('ExecSync', { container_id: prober, cmd: ['sh', '-c', `${probeScript} probe; ls /proc | grep -c '^[0-9]'`], timeout: '30' });
    const lines = r.stdout.toString().trim().split('\n');
    const seen = Number(lines.pop());
    // pause, prober's sleep, the parked process, this exec's shell and its subshells
    assert.ok(seen >= 4, `the probe sees the pod's processes (${seen})`);
    assert.deepEqual(lines.filter(Boolean), [], 'processes a container can look into');
  });
});

test('an ExecSync being set up is out of reach of the container it enters', async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    // A PATH of many missing dirs before /bin keeps each exec's setup (its search for the
    // command) going for a while, so that the probe loop meets it before its execve.
    const slowPath = `PATH=${Array(30000).fill('/n').join(':')}:/bin`.slice(5);
    const id = await createContainer(env, pod, 'target', {
      command: ['/bin/sh', '-c', `PATH=/bin; ${probeScript} while [ ! -e /tmp/stop ]; do probe; done > /tmp/found; touch /tmp/done; sleep 600`],
      envs: [{ key: 'PATH', value: Buffer.from(slowPath) }],
    });
    await env.client.call('StartContainer', { container_id: id });
    const run = (cmd: string[]) => env.client.call('ExecSync', { container_id: id, cmd, timeout: '30' });
    for (let i = 0; i < 40; i++) {
      const r = await run(['true']); // found at the end of the PATH search
      assert.equal(r.exit_code, 0, r.stderr.toString());
    }
    await run(['/bin/touch', '/tmp/stop']);
    for (;;) {
      const r = await run(['/bin/sh', '-c', '[ -e /tmp/done ] && /bin/cat /tmp/found && echo END']);
      if (r.stdout.toString().includes('END')) {
        const found = [
          ...new Set(
            r.stdout
              .toString()
              .split('\n')
              .filter((l) => l && l !== 'END'),
          ),
        ];
        assert.deepEqual(found.slice(0, 10), [], `exec processes a container could look into (${found.length} in all)`);
        break;
      }
    }
  });
});

test("a container's oom_score_adj and user never change the daemon's", async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const daemonPid = env.daemon.workerPid;
    const oomBefore = fs.readFileSync(`/proc/${daemonPid}/oom_score_adj`, 'utf8');
    const pod = await runPod(env, podConfig({ pid: 'POD' }));
    for (const pid of ['CONTAINER', 'POD']) {
      const id = await createContainer(env, pod, `pid-${pid.toLowerCase()}`, {
        command: ['sleep', '600'],
        linux: {
          resources: { oom_score_adj: '1000' },
          security_context: { run_as_user: { value: '1000' }, namespace_options: { pid, network: 'POD', ipc: 'POD' } },
        },
      });
      await env.client.call('StartContainer', { container_id: id });
      const r = await env.client.call('ExecSync', { container_id: id, cmd: ['sh', '-c', 'id -u; cat /proc/1/oom_score_adj /proc/self/oom_score_adj'], timeout: '10' });
      assert.match(r.stdout.toString(), /^1000\n/);
    }
    assert.equal(fs.readFileSync(`/proc/${daemonPid}/oom_score_adj`, 'utf8'), oomBefore, "the daemon's oom_score_adj");
  });
});
