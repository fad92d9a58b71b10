/**
 * Exec through the streaming server of a real daemon, as kubectl and crictl do it: the Exec
 * RPC's URL, then SPDY/3.1 (v4.channel.k8s.io) or WebSocket (v5.channel.k8s.io) to a busybox
 * container; and the RPCs' refusals.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ServiceError } from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';
import { createContainer, runPod, until, type Pod } from '../helpers/containers';
import { startPodEnv, withPodEnv, type PodEnv } from '../helpers/pod-env';
import { openRemoteCommand, runRemoteCommand, UpgradeRefused, type StreamTransport } from '../helpers/streaming-client';

let env: PodEnv;
let pod: Pod;
let running: string;

before(async () => {
  env = await startPodEnv();
  pod = await runPod(env);
  running = await createContainer(env, pod, 'shell', { command: ['sleep', '3600'] });
  await env.client.call('StartContainer', { container_id: running });
});

after(async () => {
  await env?.cleanup();
});

type Streams = { stdin?: boolean; stdout?: boolean; stderr?: boolean; tty?: boolean };

async function execUrl(cmd: string[], s: Streams = {}): Promise<string> {
  const { url } = await env.client.call('Exec', { container_id: running, cmd, stdin: false, stdout: true, stderr: false, tty: false, ...s });
  return url;
}

const opts = (transport: StreamTransport, s: Streams = {}) => ({ transport, stdin: false, stdout: true, stderr: false, tty: false, ...s });

describe('streaming exec', { timeout: 180_000 }, () => {
  for (const transport of ['spdy', 'websocket'] as const) {
    describe(`over ${transport}`, () => {
      it('echo hi: its output and exit 0', async () => {
        const r = await runRemoteCommand(await execUrl(['echo', 'hi']), opts(transport));
        assert.equal(r.stdout.toString(), 'hi\n');
        assert.equal(r.exitCode, 0);
      });

      it("sh -c 'exit 7': 7 through the error stream; stderr apart", async () => {
        const s = { stderr: true };
        const r = await runRemoteCommand(await execUrl(['sh', '-c', 'echo out; echo err >&2; exit 7'], s), opts(transport, s));
        assert.equal(r.exitCode, 7);
        assert.equal((r.status as { reason?: string }).reason, 'NonZeroExitCode');
        assert.equal(r.stdout.toString(), 'out\n');
        assert.equal(r.stderr.toString(), 'err\n');
      });

      it('1 MiB of random data through cat, byte for byte', async () => {
        const input = randomBytes(1 << 20);
        const s = { stdin: true };
        const r = await runRemoteCommand(await execUrl(['cat'], s), { ...opts(transport, s), input });
        assert.equal(r.exitCode, 0);
        assert.equal(r.stdout.length, input.length);
        assert.ok(r.stdout.equals(input), 'the same bytes');
      });

      it('a terminal: a prompt, and stty size follows the resizes', async () => {
        const s = { stdin: true, tty: true };
        const session = await openRemoteCommand(await execUrl(['sh'], s), opts(transport, s));
        session.resize(80, 24);
        await session.waitFor('# ');
        session.write('stty size\n');
        await session.waitFor('24 80');
        session.resize(120, 40);
        session.write('stty size\n');
        await session.waitFor('40 120');
        session.write('exit 3\n');
        const r = await session.done;
        assert.equal(r.exitCode, 3);
      });

      it('a client that goes away: the exec process is killed', async () => {
        const marker = `${3000 + Math.floor(Math.random() * 1000)}`;
        const s = { stdin: true };
        const session = await openRemoteCommand(await execUrl(['sleep', marker], s), opts(transport, s));
        const ps = async () => (await env.client.call('ExecSync', { container_id: running, cmd: ['ps', '-o', 'args'], timeout: '10' })).stdout.toString();
        await until('the exec runs', async () => (await ps()).includes(`sleep ${marker}`));
        session.close();
        await until('the exec process is gone', async () => !(await ps()).includes(`sleep ${marker}`));
      });

      it('a used token is refused (404)', async () => {
        const url = await execUrl(['true']);
        assert.equal((await runRemoteCommand(url, opts(transport))).exitCode, 0);
        await assert.rejects(runRemoteCommand(url, opts(transport)), (e: unknown) => e instanceof UpgradeRefused && e.statusCode === 404);
      });
    });
  }

  it('the RPCs refuse what kubelet refuses', async () => {
    const code = (c: number, re: RegExp) => (e: ServiceError) => {
      assert.equal(e.code, c, e.details);
      assert.match(e.details, re);
      return true;
    };
    const exec = (req: object) => env.client.call('Exec', { container_id: running, cmd: ['true'], stdout: true, ...req });
    await assert.rejects(exec({ container_id: '' }), code(Status.INVALID_ARGUMENT, /container_id/));
    await assert.rejects(exec({ cmd: [] }), code(Status.INVALID_ARGUMENT, /cmd/));
    await assert.rejects(exec({ tty: true, stderr: true }), code(Status.INVALID_ARGUMENT, /^tty and stderr cannot both be true$/));
    await assert.rejects(exec({ stdout: false }), code(Status.INVALID_ARGUMENT, /stdin, stdout, or stderr/));
    await assert.rejects(exec({ container_id: 'f'.repeat(64) }), code(Status.NOT_FOUND, /./));
    await assert.rejects(env.client.call('Attach', { container_id: running, tty: true, stderr: true }), code(Status.INVALID_ARGUMENT, /tty and stderr/));
    await assert.rejects(env.client.call('PortForward', { pod_sandbox_id: '', port: [80] }), code(Status.INVALID_ARGUMENT, /pod_sandbox_id/));
    await assert.rejects(env.client.call('PortForward', { pod_sandbox_id: 'f'.repeat(64), port: [80] }), code(Status.NOT_FOUND, /./));

    const stopped = await createContainer(env, pod, 'stopped', { command: ['true'] });
    await assert.rejects(exec({ container_id: stopped }), code(Status.FAILED_PRECONDITION, /not running|CONTAINER_CREATED/));
    await env.client.call('StartContainer', { container_id: stopped });
    await env.client.call('StopContainer', { container_id: stopped, timeout: '0' });
    await assert.rejects(exec({ container_id: stopped }), code(Status.FAILED_PRECONDITION, /./));
  });
});

it('an expired token is refused (404)', { timeout: 120_000 }, async () => {
  // StreamToken: tokens are checked as if used 61 s later, past kubelet's minute
  await withPodEnv({ env: { NODECRI_FAULTS: 'delay:StreamToken=61000' }, removePods: true }, async (late) => {
    const p = await runPod(late);
    const id = await createContainer(late, p, 'c', { command: ['sleep', '3600'] });
    await late.client.call('StartContainer', { container_id: id });
    for (const transport of ['spdy', 'websocket'] as const) {
      const { url } = await late.client.call('Exec', { container_id: id, cmd: ['true'], stdout: true });
      await assert.rejects(runRemoteCommand(url, opts(transport)), (e: unknown) => e instanceof UpgradeRefused && e.statusCode === 404);
    }
  });
});
