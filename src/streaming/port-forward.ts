/**
 * One port-forward connection, whatever the transport (spdy-transport.ts, websocket.ts):
 * the client's stream joined to localhost:port in the pod, and the error text kubelet
 * writes when that fails.
 */
import type { Readable, Writable } from 'node:stream';
import type { StreamingDomain } from './requests';

/** The message of a failed forward, worded as kubelet's (a client may match it). */
export function forwardError(port: number, sandboxId: string, e: unknown): string {
  return `error forwarding port ${port} to pod ${sandboxId}, uid : ${e instanceof Error ? e.message : String(e)}`;
}

/**
 * Connects one client stream to localhost:port in the pod and copies both ways with
 * backpressure (pipe). Resolves when the pod's side has ended and the client's bytes are
 * all written to it, or the client went away; rejects when the connection cannot be made.
 */
export async function forwardPort(domain: StreamingDomain, sandboxId: string, port: number, input: Readable, output: Writable, gone: AbortSignal): Promise<void> {
  const socket = await domain.portForward(sandboxId, port);
  if (gone.aborted) {
    socket.destroy();
    return;
  }
  await new Promise<void>((resolve) => {
    const finish = () => {
      gone.removeEventListener('abort', finish);
      socket.destroy();
      input.unpipe(socket);
      resolve();
    };
    gone.addEventListener('abort', finish);
    socket.on('error', finish);
    socket.on('close', finish);
    // The client resetting its stream (or the channel going away) ends the connection too: the
    // session may live on with other connections, and this socket would otherwise stay open.
    input.on('close', () => !input.readableEnded && finish());
    output.on('close', () => !output.writableFinished && finish());
    // The pod closing its side ends the data toward the client; the client closing its
    // side (EOF on the data stream) half-closes the socket, as kubelet's io.Copy does.
    socket.pipe(output, { end: false });
    socket.on('end', () => output.end());
    input.pipe(socket);
    output.on('error', finish);
  });
}
