/**
 * What an Exec, Attach or PortForward RPC leaves in the request cache for the streaming
 * server, and the domain calls the server makes with it (the contract of issue 13:
 * ContainerService.execStream / attach, SandboxService.portForward).
 */
import type * as net from 'node:net';
import type { StreamIO } from '../domain/stream-io';

export interface StreamOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

export interface ExecRequest extends StreamOptions {
  kind: 'exec';
  containerId: string;
  cmd: string[];
}

export interface AttachRequest extends StreamOptions {
  kind: 'attach';
  containerId: string;
}

export interface PortForwardRequest {
  kind: 'portforward';
  sandboxId: string;
  /** the ports the RPC named: WebSocket clients get exactly these; SPDY clients name theirs per stream */
  ports: number[];
}

export type StreamRequest = ExecRequest | AttachRequest | PortForwardRequest;
export type RemoteCommandRequest = ExecRequest | AttachRequest;

/** The domain as the streaming server sees it. */
export interface StreamingDomain {
  execStream(containerId: string, cmd: string[], io: StreamIO, signal: AbortSignal): Promise<{ exitCode: number }>;
  attach(containerId: string, io: StreamIO, signal: AbortSignal): Promise<void>;
  /** a socket connected to localhost:port in the pod's network namespace */
  portForward(sandboxId: string, port: number): Promise<net.Socket>;
}
