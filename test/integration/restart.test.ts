/**
 * Graceful restarts (`nodecri restart`, the in-place re-exec) under traffic: containers
 * exiting at random moments and containers logging every 10 ms, across many restarts in a
 * row. NODECRI_FAULTS=delay:handoff stalls each handoff after the daemon stopped reaping and
 * reading: exits and output of that time must reach the new image, not be taken in by the
 * old one and dropped by its execve.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { withPodEnv } from '../helpers/pod-env';
import { counter, counterValues, createContainer, logLines, runPod, until } from '../helpers/containers';
import { openRemoteCommand } from '../helpers/streaming-client';

const restarts = 20;
const stallMs = 500;

test(`${restarts} graceful restarts while 5 containers exit at random moments and 5 log every 10 ms: every exit code and every line kept`, { timeout: 240_000 }, async () => {
  await withPodEnv({ removePods: true, env: { NODECRI_FAULTS: `delay:handoff=${stallMs}` } }, async (env) => {
    const pod = await runPod(env);
    const counters: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = await createContainer(env, pod, `counter${i}`, { command: counter });
      await env.client.call('StartContainer', { container_id: id });
      counters.push(id);
    }
    const pid = env.daemon.proc.pid;
    // Each exiting container sleeps a random 0.1-3 s, says its last words and exits with a
    // code of its own: when that happens in a handoff, the words are in a pipe that only the
    // fd the old image kept across its execve holds open.
    const exiters: { id: string; code: number; words: string }[] = [];
    const running = new Set<string>();
    const topUp = async () => {
      const list = await env.client.call('ListContainers', { filter: { state: { state: 'CONTAINER_RUNNING' }, pod_sandbox_id: pod.sandboxId } });
      const now = new Set(list.containers.map((c) => c.id));
      for (const id of running) if (!now.has(id)) running.delete(id);
      while (running.size < 5) {
        const k = exiters.length;
        const code = 1 + ((k * 37) % 200);
        const sleep = (0.1 + Math.random() * 2.9).toFixed(2);
        const id = await createContainer(env, pod, `exit${k}`, { command: ['sh', '-c', `sleep ${sleep}; echo last words of ${k}; exit ${code}`] });
        await env.client.call('StartContainer', { container_id: id });
        exiters.push({ id, code, words: `last words of ${k}` });
        running.add(id);
      }
    };
    for (let round = 0; round < restarts; round++) {
      await topUp();
      // returns once the new image has written its pid file and answers Version
      await env.restart('graceful');
    }
    assert.equal(env.daemon.proc.pid, pid, 'the same process all along');

    // Every exit and every stream is checked before anything is asserted, so that a
    // failure lists all that was lost.
    const wrongExits: object[] = [];
    const lostWords: string[] = [];
    for (const { id, code, words } of exiters) {
      const st = await until(`exit of ${id}`, async () => {
        const s = (await env.client.call('ContainerStatus', { container_id: id })).status!;
        return s.state === 'CONTAINER_EXITED' ? s : null;
      });
      if (st.exit_code !== code || st.reason !== 'Error') wrongExits.push({ name: st.metadata?.name, chose: code, got: st.exit_code, reason: st.reason });
      const said = logLines(st.log_path).map((l) => `${l.stream} ${l.tag} ${l.text}`);
      if (said.join('\n') !== `stdout F ${words}`) lostWords.push(`${String(st.metadata?.name)}: ${JSON.stringify(said)}`);
    }
    for (const id of counters) await env.client.call('StopContainer', { container_id: id, timeout: '0' });
    const wrongLogs: string[] = [];
    for (const [i, id] of counters.entries()) {
      const logPath = (await env.client.call('ContainerStatus', { container_id: id })).status!.log_path;
      // logLines asserts that each record is well formed (timestamp, stream, tag)
      for (const l of logLines(logPath)) if (!/^\d*$/.test(l.text)) wrongLogs.push(`counter${i}: a malformed record: ${JSON.stringify(l)}`);
      const values = counterValues(logPath);
      assert.ok(values.length > 100, `counter${i} logged across the restarts (${values.length} lines)`);
      let expected = 0;
      for (const v of values) {
        if (v !== expected) wrongLogs.push(`counter${i}: ${v} where ${expected} was due (${v > expected ? 'lines lost' : 'a line repeated'})`);
        expected = v + 1;
      }
    }
    const found = { wrongExits: wrongExits.slice(0, 5), lostWords: lostWords.slice(0, 5), wrongLogs: wrongLogs.slice(0, 10) };
    assert.ok(
      wrongExits.length === 0 && lostWords.length === 0 && wrongLogs.length === 0,
      `${wrongExits.length} of ${exiters.length} exit codes wrong, ${lostWords.length} last words lost, ${wrongLogs.length} faults in the 5 counters' logs; the first: ${JSON.stringify(found)}`,
    );
    assert.equal(env.daemon.logs.filter((l) => l.msg === 're-executing').length, restarts, 'every restart went through the handoff');
  });
});

test('a graceful restart with a terminal container running completes: its pty master, a blocking fd, is not read in the handoff', { timeout: 120_000 }, async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const id = await createContainer(env, pod, 'tty', { command: ['sh', '-c', 'echo hello; exec sleep 3600'], tty: true });
    await env.client.call('StartContainer', { container_id: id });
    const log = `${(pod.sandboxConfig as { log_directory: string }).log_directory}/tty.log`;
    // Its output read: the master is empty now, where a read would have blocked the handoff.
    await until('the terminal output in the log', async () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('hello'));
    await env.restart('graceful');
    const st = (await env.client.call('ContainerStatus', { container_id: id })).status!;
    assert.equal(st.id, id);
  });
});

test(
  "a graceful restart hands over a tty container's terminal and a container's stdin: output after it reaches the log, an attach after it reaches the container",
  { timeout: 120_000 },
  async () => {
    await withPodEnv({ removePods: true }, async (env) => {
      const pod = await runPod(env);
      const dir = (pod.sandboxConfig as { log_directory: string }).log_directory;
      // The terminal's shell reads its commands from the terminal: stdin and tty, as kubectl run -it.
      const tty = await createContainer(env, pod, 'tty', { command: ['sh'], tty: true, stdin: true });
      // A pipe's reader: cat echoes what reaches its stdin into the log.
      const piped = await createContainer(env, pod, 'piped', { command: ['cat'], stdin: true });
      for (const id of [tty, piped]) await env.client.call('StartContainer', { container_id: id });
      const attach = async (id: string, terminal: boolean) => {
        const { url } = await env.client.call('Attach', { container_id: id, stdin: true, tty: terminal, stdout: true, stderr: !terminal });
        return openRemoteCommand(url, { transport: 'spdy', stdin: true, stdout: true, stderr: !terminal, tty: terminal });
      };
      const before = await attach(tty, true);
      before.write('echo before-$((20+1))\n');
      await before.waitFor('before-21');
      before.close();
      await env.restart('graceful');
      // The shell still runs (a hung-up terminal would have sent it SIGHUP) and its terminal
      // is read into the log again.
      const t = await attach(tty, true);
      t.write('echo after-$((40+2))\n');
      await t.waitFor('after-42');
      t.close();
      await until('the terminal output after the restart in the log', async () => fs.readFileSync(`${dir}/tty.log`, 'utf8').includes('after-42'));
      const p = await attach(piped, false);
      p.write('piped-after-restart\n');
      await p.waitFor('piped-after-restart');
      p.close();
      await until("cat's output in the log", async () => fs.readFileSync(`${dir}/piped.log`, 'utf8').includes('piped-after-restart'));
      for (const id of [tty, piped]) assert.equal((await env.client.call('ContainerStatus', { container_id: id })).status!.state, 'CONTAINER_RUNNING');
    });
  },
);
