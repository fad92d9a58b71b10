/**
 * Handler types derived from the generated service interfaces, so that every handler file
 * is typed by its RPC name alone: `export const version: Unary<'Version'> = ...`.
 */
import type * as grpc from '@grpc/grpc-js';
import type { RuntimeServiceHandlers } from './generated/runtime/v1/RuntimeService';
import type { ImageServiceHandlers } from './generated/runtime/v1/ImageService';
import type { CallContext } from './context';

type AllHandlers = RuntimeServiceHandlers & ImageServiceHandlers;
export type RpcName = keyof AllHandlers & string;

type Shape<H> = H extends grpc.handleUnaryCall<infer Q, infer R> ? [Q, R] : H extends grpc.handleServerStreamingCall<infer Q, infer R> ? [Q, R] : never;
type RequestOf<H> = Shape<H>[0];
type ResponseOf<H> = Shape<H>[1];

export type Request<N extends RpcName> = RequestOf<AllHandlers[N]>;
export type Response<N extends RpcName> = ResponseOf<AllHandlers[N]>;

/** A unary RPC: one request, one response. */
export type Unary<N extends RpcName> = (req: Request<N>, ctx: CallContext) => Promise<Response<N>>;

/** A server-streaming RPC: `send` each message; resolve to end the stream. */
export type ServerStream<N extends RpcName> = (req: Request<N>, ctx: CallContext, send: (message: Response<N>) => void) => Promise<void>;

export type AnyHandler = Unary<RpcName> | ServerStream<RpcName>;
