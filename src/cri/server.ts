/**
 * The CRI gRPC server on a unix socket: registers every RPC of RuntimeService and
 * ImageService, guards the socket path (a live daemon's socket is refused, a stale one
 * replaced), and shuts down gracefully within a bound.
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

export async function startCriServer(opts: CriServerOptions): Promise<CriServer> {
  const table = opts.handlers ?? defaultHandlers;
  const draining = new AbortController();
  const forced = new AbortController();
  await prepareSocketPath(opts.socketPath, opts.log);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    'grpc.max_send_message_length': 16 * 1024 * 1024,
  });
  for (const service of ['RuntimeService', 'ImageService'] as ServiceName[]) {
    const def = serviceDefinition(service);
    const impl: grpc.UntypedServiceImplementation = {};
    const iopts: InstrumentOptions = { service, deps: opts.deps, log: opts.log, metrics: opts.metrics, draining: draining.signal, forced: forced.signal, faults: opts.faults ?? noFaults };
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
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(opts.socketPath, () => {
      front.off('error', reject);
      resolve();
    });
  });
  // kubelet and crictl run as root; the group may be granted access by the operator.
  await fsp.chmod(opts.socketPath, 0o660);

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
