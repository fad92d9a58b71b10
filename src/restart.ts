/**
 * `nodecri restart`: asks the running daemon (by its pid file) to re-exec itself in place
 * (SIGUSR2), then waits until the new image has written its pid file and answers on the
 * CRI socket.
 */
import fsp from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { pidFile } from './daemon';
import { loaderOptions, protoFile } from './cri/proto';

interface PidRecord {
  pid: number;
  startedAt: number;
}

async function readPid(runroot: string): Promise<PidRecord | null> {
  try {
    return JSON.parse(await fsp.readFile(pidFile(runroot), 'utf8')) as PidRecord;
  } catch {
    return null;
  }
}

function versionOk(socket: string): Promise<boolean> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoFile, loaderOptions)) as unknown as {
    runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } };
  };
  const client = new pkg.runtime.v1.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      '/runtime.v1.RuntimeService/Version',
      (x: Buffer) => x,
      (x: Buffer) => x,
      Buffer.alloc(0),
      new grpc.Metadata(),
      { deadline: Date.now() + 2000 },
      (err: grpc.ServiceError | null) => {
        client.close();
        resolve(err === null);
      },
    );
  });
}

export async function restartDaemon(runroot: string, socket: string, timeoutMs: number): Promise<void> {
  const before = await readPid(runroot);
  if (!before) throw new Error(`no running daemon: ${pidFile(runroot)} is missing`);
  try {
    process.kill(before.pid, 'SIGUSR2');
  } catch (e) {
    throw new Error(`cannot signal daemon pid ${before.pid}: ${(e as Error).message}`, { cause: e });
  }
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const now = await readPid(runroot);
    if (now && now.startedAt !== before.startedAt && (await versionOk(socket))) {
      process.stdout.write(`nodecri restarted in place (pid ${now.pid})\n`);
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the daemon did not come back within ${timeoutMs / 1000}s`);
}
