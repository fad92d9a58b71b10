/**
 * The CRI gRPC server on a unix socket: registers every RPC of RuntimeService and
 * ImageService, guards the socket path (a live daemon's socket is refused, a stale one
 * replaced), makes the socket appear with its final mode and group, and shuts down
 * gracefully within a bound.
 */
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../obs/logger';
import type { Metrics } from '../obs/metrics';
import type { CriDeps } from './deps';
import type { AnyHandler, RpcName } from './handlers';
import { instrumentServerStream, instrumentUnary, type InstrumentOptions } from './instrument';
import { serviceDefinition, type ServiceName } from './proto';
import { handlers as defaultHandlers } from './services';
import { frontDoor } from './transport';
import { unimplemented } from '../domain/errors';
import { noFaults, type Faults } from '../util/faults';

export interface CriServerOptions {
  socketPath: string;
  /** the socket's group (mode 0660); null: root only (mode 0600) */
  socketGid: number | null;
  deps: CriDeps;
  log: Logger;
  metrics: Metrics;
  /** Replaces the handler table (tests). */
  handlers?: Partial<Record<RpcName, AnyHandler>>;
  faults?: Faults;
}

export interface CriServer {
  socketPath: string;
  /**
   * Stops accepting calls, lets in-flight unary calls finish for up to `timeoutMs`, ends
   * streams at once, then closes every connection and removes the socket file.
   */
  shutdown(timeoutMs: number): Promise<void>;
}

/** Whether something accepts connections on the unix socket at `p`. */
function socketIsLive(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(p);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Makes `socketPath` ready to bind: its dir exists; a stale socket is removed; a live one refused. */
async function prepareSocketPath(socketPath: string, log: Logger): Promise<void> {
  await fsp.mkdir(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  let st;
  try {
    st = await fsp.lstat(socketPath);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${socketPath} exists and is not a socket; refusing to replace it`);
  if (await socketIsLive(socketPath)) {
    throw new Error(`another daemon is already listening on ${socketPath}; refusing to start`);
  }
  log.warn({ socket: socketPath }, 'removing stale socket of a daemon that is gone');
  await fsp.unlink(socketPath);
}

/**
 * Listens on `socketPath` so that the path never exists with a wider mode or another group
 * than its final ones. The socket is bound in a private 0700 dir beside the path, given its
 * mode and group there, and renamed into place: rename(2) is atomic, and a unix socket is
 * found by its inode, so it accepts under its new name. A umask around listen would do too,
 * but it is process-wide: it would also narrow files the thread pool creates meanwhile. A
 * chmod after listen (as containerd and CRI-O do) leaves a window where anyone connects.
 */
async function listenInPlace(server: net.Server, socketPath: string, gid: number | null): Promise<void> {
  const dir = path.dirname(socketPath);
  const tmpDir = await fsp.mkdtemp(path.join(dir, '.nodecri-bind-'));
  const tmp = path.join(tmpDir, 's');
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(tmp, () => {
        server.off('error', reject);
        resolve();
      });
    });
    try {
      await fsp.chmod(tmp, gid === null ? 0o600 : 0o660);
      if (gid !== null) await fsp.lchown(tmp, -1, gid);
      await fsp.rename(tmp, socketPath);
    } catch (e) {
      server.close();
      throw e;
    }
  } finally {
    await fsp.rm(tmpDir, { recursive: true, force: true });
  }
}

export async function startCriServer(opts: CriServerOptions): Promise<CriServer> {
  const table = opts.handlers ?? defaultHandlers;
  const draining = new AbortController();
  const forced = new AbortController();
  await prepareSocketPath(opts.socketPath, opts.log);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    'grpc.max_send_message_length': 16 * 1024 * 1024,
    // Nothing serves channelz here; its per-call tracking was 2.5% of a Version call's CPU.
    'grpc.enable_channelz': 0,
  });
  for (const service of ['RuntimeService', 'ImageService'] as ServiceName[]) {
    const def = serviceDefinition(service);
    const impl: grpc.UntypedServiceImplementation = {};
    const iopts: InstrumentOptions = {
      service,
      deps: opts.deps,
      log: opts.log,
      metrics: opts.metrics,
      draining: draining.signal,
      forced: forced.signal,
      faults: opts.faults ?? noFaults,
    };
    for (const [name, method] of Object.entries(def)) {
      // proto-loader keeps each message's descriptor beside the method; its name is the
      // message type, which the redaction in the logs needs.
      const described = method as unknown as { requestType: { type: { name: string } }; responseType: { type: { name: string } } };
      const shape = { operation: name, requestType: described.requestType.type.name, responseType: described.responseType.type.name };
      const handler: AnyHandler | undefined = table[name as RpcName];
      const fallback = async () => {
        throw unimplemented(`${service}/${name} is not implemented by nodecri yet`);
      };
      impl[name] = method.responseStream
        ? instrumentServerStream(iopts, shape, (handler ?? fallback) as Parameters<typeof instrumentServerStream>[2])
        : instrumentUnary(iopts, shape, (handler ?? fallback) as Parameters<typeof instrumentUnary>[2]);
    }
    server.addService(def, impl);
  }
  // Connections come through our front door (src/cri/transport.ts), which copes with
  // clients that send the socket path as their HTTP/2 authority.
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const front = frontDoor((conn) => injector.injectConnection(conn));
  // kubelet and crictl run as root; the operator may grant a group access.
  await listenInPlace(front, opts.socketPath, opts.socketGid);

  let closing: Promise<void> | null = null;
  return {
    socketPath: opts.socketPath,
    shutdown(timeoutMs: number) {
      closing ??= (async () => {
        draining.abort();
        front.close();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            opts.log.warn({ timeoutMs }, 'in-flight calls did not finish in time; cancelling them');
            forced.abort();
            // Give the cancelled handlers a moment to answer before cutting connections.
            setTimeout(() => {
              server.forceShutdown();
              resolve();
            }, 200);
          }, timeoutMs);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        await fsp.rm(opts.socketPath, { force: true });
      })();
      return closing;
    },
  };
}
