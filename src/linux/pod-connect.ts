/**
 * A TCP connection to a port on a pod's own localhost (port-forward): the socket is made in
 * the pod's network namespace by the addon (socketInNetns), then connected from the loop,
 * without blocking it, like any other socket.
 */
import fs from 'node:fs';
import net from 'node:net';
import { socketInNetns } from '../native/namespaces';

/** A connect to localhost that has not completed by then fails (a listener whose backlog is full drops SYNs). */
export const podConnectTimeoutMs = 10_000;

/**
 * Connects to 127.0.0.1:`port` inside the network namespace at `netnsPath`, or in the
 * daemon's own (the host's) for null. Rejects with the connect's error (ECONNREFUSED when
 * nothing listens, ETIMEDOUT after podConnectTimeoutMs), leaving no socket behind.
 */
export async function connectInNetns(netnsPath: string | null, port: number): Promise<net.Socket> {
  let sock: net.Socket;
  if (netnsPath === null) {
    sock = new net.Socket();
  } else {
    const fd = await socketInNetns(netnsPath);
    try {
      sock = new net.Socket({ fd, readable: true, writable: true });
    } catch (e) {
      fs.close(fd, () => {});
      throw e;
    }
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(Object.assign(new Error(`connect ETIMEDOUT 127.0.0.1:${port}`), { code: 'ETIMEDOUT' })), podConnectTimeoutMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    sock.once('error', fail);
    sock.connect(port, '127.0.0.1', () => {
      clearTimeout(timer);
      sock.removeListener('error', fail);
      resolve(sock);
    });
  });
}
