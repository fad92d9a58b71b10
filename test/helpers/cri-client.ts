/**
 * A CRI client built from our proto, as kubelet or crictl would talk to the daemon: every
 * RPC of both services by name, promisified, typed from the generated definitions.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { MethodDefinition } from '@grpc/proto-loader';
import type { RuntimeServiceDefinition } from '../../src/cri/generated/runtime/v1/RuntimeService';
import type { ImageServiceDefinition } from '../../src/cri/generated/runtime/v1/ImageService';
import { loaderOptions, protoFile } from '../../src/cri/proto';

type Defs = RuntimeServiceDefinition & ImageServiceDefinition;
export type ClientRpc = keyof Defs & string;
type Shape<N extends ClientRpc> = Defs[N] extends MethodDefinition<infer I, infer _R, infer _Q, infer O> ? [I, O] : never;
type In<N extends ClientRpc> = Shape<N>[0];
type Out<N extends ClientRpc> = Shape<N>[1];

const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoFile, loaderOptions)) as unknown as {
  runtime: { v1: Record<'RuntimeService' | 'ImageService', grpc.ServiceClientConstructor> };
};

export class CriClient {
  private readonly runtime: grpc.Client;
  private readonly image: grpc.Client;

  /** `channelOptions`: e.g. `grpc.default_authority` set to the socket path, as crictl sends it. */
  constructor(
    readonly socketPath: string,
    channelOptions: grpc.ChannelOptions = {},
  ) {
    const target = `unix://${socketPath}`;
    const creds = grpc.credentials.createInsecure();
    this.runtime = new pkg.runtime.v1.RuntimeService(target, creds, channelOptions);
    this.image = new pkg.runtime.v1.ImageService(target, creds, channelOptions);
  }

  private clientFor(name: string): grpc.Client & Record<string, (...a: unknown[]) => unknown> {
    const c = (name in pkg.runtime.v1.ImageService.service ? this.image : this.runtime) as grpc.Client & Record<string, (...a: unknown[]) => unknown>;
    return c;
  }

  /** Calls a unary RPC; rejects with the grpc ServiceError (code, details). */
  call<N extends ClientRpc>(name: N, request: In<N>, options: grpc.CallOptions = {}): Promise<Out<N>> {
    const client = this.clientFor(name);
    return new Promise((resolve, reject) => {
      client[name].call(client, request, new grpc.Metadata(), options, (err: grpc.ServiceError | null, res: Out<N>) => (err ? reject(err) : resolve(res)));
    });
  }

  /** Calls a unary RPC that the caller may cancel, as a client that gives up does. */
  cancellable<N extends ClientRpc>(name: N, request: In<N>, options: grpc.CallOptions = {}): { result: Promise<Out<N>>; cancel: () => void } {
    const client = this.clientFor(name);
    let call: grpc.ClientUnaryCall | undefined;
    const result = new Promise<Out<N>>((resolve, reject) => {
      call = client[name].call(client, request, new grpc.Metadata(), options, (err: grpc.ServiceError | null, res: Out<N>) =>
        err ? reject(err) : resolve(res),
      ) as grpc.ClientUnaryCall;
    });
    return { result, cancel: () => call?.cancel() };
  }

  /** Calls a server-streaming RPC and collects every message until the end. */
  stream<N extends ClientRpc>(name: N, request: In<N>, options: grpc.CallOptions = {}): Promise<Out<N>[]> {
    const client = this.clientFor(name);
    return new Promise((resolve, reject) => {
      const out: Out<N>[] = [];
      const call = client[name].call(client, request, new grpc.Metadata(), options) as grpc.ClientReadableStream<Out<N>>;
      call.on('data', (m: Out<N>) => out.push(m));
      call.on('error', reject);
      call.on('end', () => resolve(out));
    });
  }

  /** Opens a server stream and hands it back, for tests that read as events arrive. */
  openStream<N extends ClientRpc>(name: N, request: In<N>, options: grpc.CallOptions = {}): grpc.ClientReadableStream<Out<N>> {
    const client = this.clientFor(name);
    return client[name].call(client, request, new grpc.Metadata(), options) as grpc.ClientReadableStream<Out<N>>;
  }

  close(): void {
    this.runtime.close();
    this.image.close();
  }
}
