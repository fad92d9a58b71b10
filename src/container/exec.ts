/** ExecSync: a command run in a running container as its process runs, its output collected. */
import net from 'node:net';
import { RuntimeError, failedPrecondition, invalidArgument } from '../domain/errors';
import type { ContainerContext } from './context';
import { exitCodeOf } from './state-machine';
import { execProcessSpec } from './process-plan';

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

/** ExecSync output beyond this is dropped (the stream is still drained). */
export const execOutputLimit = 16 * 1024 * 1024;

/**
 * Runs `cmd` in the running container as its process runs (user, caps, seccomp, env),
 * collecting up to 16 MiB of each stream. A timeout kills the exec and is an error.
 */
export async function execSync(ctx: ContainerContext, idOrPrefix: string, cmd: string[], timeoutSeconds: number, signal: AbortSignal | null): Promise<ExecSyncResult> {
  const r = ctx.mustGet(idOrPrefix);
  if (cmd.length === 0) throw invalidArgument('cmd is empty');
  const live = ctx.live.get(r.id);
  if (r.state !== 'CONTAINER_RUNNING' || !live?.handle) throw failedPrecondition(`container ${r.id} is not running`);
  const spec = await ctx.spec(r);
  const handle = await ctx.opts.host.execProcess(live.handle, execProcessSpec(spec, cmd, await ctx.cgroupProcs(r), { stdin: 'null', stdout: 'pipe', stderr: 'pipe' }, false));
  const collect = (fd: number | null): Promise<Buffer> =>
    new Promise((resolve) => {
      if (fd === null) return resolve(Buffer.alloc(0));
      const chunks: Buffer[] = [];
      let size = 0;
      const sock = new net.Socket({ fd, readable: true, writable: false });
      sock.on('data', (c: Buffer) => {
        if (size < execOutputLimit) {
          chunks.push(c.subarray(0, execOutputLimit - size));
          size += c.length;
        }
      });
      sock.once('close', () => resolve(Buffer.concat(chunks)));
      sock.once('error', () => resolve(Buffer.concat(chunks)));
    });
  const outputs = Promise.all([collect(handle.stdout), collect(handle.stderr)]);
  let timedOut = false;
  const kill = () => {
    try {
      ctx.opts.host.signalProcess(handle, 'SIGKILL');
    } catch {
      // gone
    }
  };
  const timer = timeoutSeconds > 0 ? setTimeout(() => ((timedOut = true), kill()), timeoutSeconds * 1000) : null;
  signal?.addEventListener('abort', kill, { once: true });
  const st = await handle.exited;
  if (timer) clearTimeout(timer);
  signal?.removeEventListener('abort', kill);
  // Children of the exec may hold its pipes: do not wait for them beyond a moment.
  const [stdout, stderr] = await Promise.race([outputs, new Promise<[Buffer, Buffer]>((res) => setTimeout(() => res([Buffer.alloc(0), Buffer.alloc(0)]), 1000).unref())]);
  await ctx.opts.host.releaseProcess(handle).catch(() => {});
  if (timedOut) {
    throw new RuntimeError('deadline-exceeded', `command ${JSON.stringify(cmd)} in container ${r.id} timed out after ${timeoutSeconds}s`);
  }
  return { stdout, stderr, exitCode: exitCodeOf(st) ?? 255 };
}
