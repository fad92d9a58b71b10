/**
 * Attach, PortForward and a streaming Exec's cleanup through the real daemon, its
 * streaming server and the test client (test/helpers/streaming-client.ts): attach to a
 * container running sh (with and without a terminal) reads and writes, stdin_once closes
 * after the first attach, two attaches see the same output and the CRI log still has it;
 * port-forward reaches a busybox httpd on the pod's own localhost, two streams at once,
 * 10 MiB through one arrive whole; a client that goes away mid-exec leaves no exec process,
 * pty or fd behind in the daemon.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { withPodEnv, type PodEnv } from '../helpers/pod-env';
import { runPod, until, type Pod } from '../helpers/containers';
import { busyboxRef } from '../helpers/pod-env';
import { childrenOf } from '../helpers/leaks';
import { podConfig } from '../helpers/pods';
import { openPortForward, openRemoteCommand, runRemoteCommand, type RemoteCommandSession, type StreamTransport } from '../helpers/streaming-client';

/** The transports the streaming server speaks. */
const transports: StreamTransport[] = ['spdy', 'websocket'];
/** The one most tests use: kubectl's and crictl's. */
const main = transports[0];

/** A busybox container with stdin (and a terminal) as kubelet asks for one, started. */
async function startContainer(env: PodEnv, pod: Pod, name: string, command: string[], o: { stdin?: boolean; stdinOnce?: boolean; tty?: boolean } = {}): Promise<string> {
  const { container_id } = await env.client.call('CreateContainer', {
    pod_sandbox_id: pod.sandboxId,
    sandbox_config: pod.sandboxConfig,
    config: {
      metadata: { name, attempt: 0 },
      image: { image: busyboxRef },
      command,
      log_path: `${name}.log`,
      stdin: o.stdin ?? false,
      stdin_once: o.stdinOnce ?? false,
      tty: o.tty ?? false,
    },
  });
  await env.client.call('StartContainer', { container_id });
  return container_id;
}

async function attachUrl(env: PodEnv, id: string, o: { stdin: boolean; tty: boolean }): Promise<string> {
  return (await env.client.call('Attach', { container_id: id, stdin: o.stdin, tty: o.tty, stdout: true, stderr: !o.tty })).url;
}

async function attach(env: PodEnv, id: string, o: { stdin: boolean; tty: boolean }, transport: StreamTransport = main): Promise<RemoteCommandSession> {
  return openRemoteCommand(await attachUrl(env, id, o), { transport, stdin: o.stdin, stdout: true, stderr: !o.tty, tty: o.tty });
}

/** The text of a container's CRI log, record by record (a terminal's lines keep their \r). */
function logOf(pod: Pod, name: string): string {
  const file = `${(pod.sandboxConfig as { log_directory: string }).log_directory}/${name}.log`;
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/^\S+ (stdout|stderr) [PF] /, ''))
    .join('\n');
}

test('attach to sh with a terminal: commands typed run, their output comes back, resize applies', { timeout: 120_000 }, async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const id = await startContainer(env, pod, 'shell', ['sh'], { stdin: true, tty: true });
    for (const transport of transports) {
      const s = await attach(env, id, { stdin: true, tty: true }, transport);
      s.resize(101, 33);
      s.write(`echo "sum-${transport}=$((40+2))"; stty size\n`);
      await s.waitFor(`sum-${transport}=42`);
      await s.waitFor('33 101');
      s.close();
    }
    const last = await attach(env, id, { stdin: true, tty: true });
    last.write('exit 3\n');
    const r = await last.done;
    assert.equal(r.error, null);
    const st = (await env.client.call('ContainerStatus', { container_id: id })).status!;
    assert.equal(st.state, 'CONTAINER_EXITED');
    assert.equal(st.exit_code, 3);
    assert.match(logOf(pod, 'shell'), new RegExp(`sum-${main}=42`));
  });
});

test('attach to sh with stdin and no terminal: stdout and stderr apart; several attaches see the same output; the log has it', { timeout: 120_000 }, async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const id = await startContainer(env, pod, 'piped', ['sh'], { stdin: true });
    const writer = await attach(env, id, { stdin: true, tty: false });
    const watcher = await attach(env, id, { stdin: false, tty: false }, transports[transports.length - 1]);
    writer.write('echo to-out; echo to-err >&2\n');
    await writer.waitFor('to-out', 'stdout');
    await writer.waitFor('to-err', 'stderr');
    await watcher.waitFor('to-out', 'stdout');
    await watcher.waitFor('to-err', 'stderr');
    // A client that goes away takes nothing with it: the others and the log go on.
    watcher.close();
    writer.write('echo second-line\n');
    await writer.waitFor('second-line', 'stdout');
    writer.write('exit 0\n');
    const r = await writer.done;
    assert.equal(r.error, null);
    assert.doesNotMatch(r.stdout.toString(), /to-err/);
    const log = logOf(pod, 'piped');
    for (const line of ['to-out', 'to-err', 'second-line']) assert.match(log, new RegExp(line));
  });
});

test("stdin_once: the first attach's stdin is the only one; when it ends the container reads EOF", { timeout: 120_000 }, async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const id = await startContainer(env, pod, 'once', ['sh', '-c', 'while read l; do echo "line:$l"; done; echo got-eof; sleep 3600'], { stdin: true, stdinOnce: true });
    const first = await attach(env, id, { stdin: true, tty: false });
    first.write('a\n');
    await first.waitFor('line:a');
    first.endStdin();
    await first.waitFor('got-eof');
    first.close();
    const second = await attach(env, id, { stdin: true, tty: false });
    second.write('b\n');
    second.close();
    await env.client.call('StopContainer', { container_id: id, timeout: '0' });
    const log = logOf(pod, 'once');
    assert.match(log, /line:a\ngot-eof/);
    assert.doesNotMatch(log, /line:b/);
  });
});

/** The daemon's open fds, less the ones of /proc it reads itself. */
function daemonFds(pid: number): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(`${fd} ${fs.readlinkSync(`/proc/${pid}/fd/${fd}`)}`);
    } catch {
      // closed while we looked
    }
  }
  return out.sort();
}

test('a client that goes away mid-exec leaves no exec process, pty or fd in the daemon', { timeout: 120_000 }, async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const id = await startContainer(env, pod, 'target', ['sleep', '3600']);
    const daemon = env.daemon.workerPid;
    const url = async (tty: boolean) =>
      (await env.client.call('Exec', { container_id: id, cmd: ['sh', '-c', 'echo started; exec sleep 3600'], tty, stdin: true, stdout: true, stderr: !tty })).url;
    // Warm up both paths (the server's first connection, the addon's first pty), and count.
    for (const tty of [false, true]) {
      const r = await runRemoteCommand((await env.client.call('Exec', { container_id: id, cmd: ['true'], tty, stdin: false, stdout: true, stderr: !tty })).url, {
        transport: main,
        stdin: false,
        stdout: true,
        stderr: !tty,
        tty,
      });
      assert.equal(r.exitCode, 0);
    }
    const before = { fds: daemonFds(daemon).length, children: childrenOf(daemon).length };
    for (const tty of [false, true]) {
      for (const transport of transports) {
        const s = await openRemoteCommand(await url(tty), { transport, stdin: true, stdout: true, stderr: !tty, tty });
        await s.waitFor('started');
        assert.ok(childrenOf(daemon).length > before.children, 'the exec runs as a child of the daemon');
        s.close();
        await until(
          `the exec (tty ${tty}, ${transport}) and its fds gone`,
          async () => {
            const now = { fds: daemonFds(daemon).length, children: childrenOf(daemon).length };
            return now.fds <= before.fds && now.children <= before.children;
          },
          60_000,
        );
      }
    }
    // No pty of the container's devpts is left open by anything.
    const ptys = await env.client.call('ExecSync', { container_id: id, cmd: ['ls', '/dev/pts'], timeout: '5' });
    assert.deepEqual(
      ptys.stdout
        .toString()
        .split(/\s+/)
        .filter((n: string) => /^\d+$/.test(n)),
      [],
    );
  });
});

async function readAll(s: Duplex): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test("port-forward to a host-network pod reaches the host's localhost", { timeout: 120_000 }, async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env, podConfig({ hostNetwork: true }));
    const server = net.createServer((c) => c.end('from the host\n'));
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const session = await openPortForward((await env.client.call('PortForward', { pod_sandbox_id: pod.sandboxId, port: [port] })).url, { transport: main });
      try {
        assert.equal((await readAll(await session.connect(port))).toString(), 'from the host\n');
      } finally {
        session.close();
      }
    } finally {
      server.close();
    }
  });
});

test("port-forward reaches httpd on the pod's localhost, two streams at once, 10 MiB whole", { timeout: 180_000 }, async () => {
  await withPodEnv({ removePods: true }, async (env) => {
    const pod = await runPod(env);
    const id = await startContainer(env, pod, 'web', [
      'sh',
      '-c',
      'mkdir -p /www && echo "the page" > /www/index.html && head -c 10485760 /dev/urandom > /www/blob && exec httpd -f -p 127.0.0.1:8080 -h /www',
    ]);
    // httpd listens once it has started: wait for it from inside the pod.
    await until('httpd listening', async () => {
      const r = await env.client.call('ExecSync', { container_id: id, cmd: ['wget', '-q', '-O', '-', 'http://127.0.0.1:8080/'], timeout: '5' });
      return r.exit_code === 0;
    });
    const fdsBefore = daemonFds(env.daemon.workerPid).length;
    for (const transport of transports) {
      // Two streams at once: in one session over SPDY; over WebSocket a session has one
      // connection per port (kubelet's protocol), so two sessions.
      const forward = async () => openPortForward((await env.client.call('PortForward', { pod_sandbox_id: pod.sandboxId, port: [8080] })).url, { transport });
      const first = await forward();
      const second = transport === 'spdy' ? first : await forward();
      try {
        const [a, b] = await Promise.all([first.connect(8080), second.connect(8080)]);
        a.write('GET / HTTP/1.0\r\n\r\n');
        b.write('GET /index.html HTTP/1.0\r\n\r\n');
        const [pa, pb] = await Promise.all([readAll(a), readAll(b)]);
        for (const page of [pa, pb]) {
          assert.match(page.toString(), /^HTTP\/1\.[01] 200/);
          assert.match(page.toString(), /the page/);
        }
      } finally {
        first.close();
        second.close();
      }
    }
    // 10 MiB through one stream: httpd sends the file whole and closes (HTTP/1.0).
    const sum = (await env.client.call('ExecSync', { container_id: id, cmd: ['md5sum', '/www/blob'], timeout: '10' })).stdout.toString().split(' ')[0];
    const { url } = await env.client.call('PortForward', { pod_sandbox_id: pod.sandboxId, port: [8080] });
    const session = await openPortForward(url, { transport: main });
    try {
      const s = await session.connect(8080);
      s.write('GET /blob HTTP/1.0\r\n\r\n');
      const reply = await readAll(s);
      const body = reply.subarray(reply.indexOf('\r\n\r\n') + 4);
      assert.equal(body.length, 10 * 1024 * 1024);
      assert.equal(createHash('md5').update(body).digest('hex'), sum);
    } finally {
      session.close();
    }
    // Nothing listens there: the stream fails with the connect's error, on either transport (the
    // SPDY client waits for the error stream's text before it reports the data stream's end).
    for (const transport of ['spdy', 'websocket'] as const) {
      const refused = await openPortForward((await env.client.call('PortForward', { pod_sandbox_id: pod.sandboxId, port: [9] })).url, { transport });
      try {
        const s = await refused.connect(9);
        await assert.rejects(readAll(s), /ECONNREFUSED|refused/, transport);
      } finally {
        refused.close();
      }
    }
    // Every connection in the pod and to the client is closed with its session.
    await until("the daemon's port-forward fds closed", async () => daemonFds(env.daemon.workerPid).length <= fdsBefore, 60_000);
  });
});
