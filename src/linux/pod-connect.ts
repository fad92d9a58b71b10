/**
 * A TCP connection to a port on a pod's own localhost (port-forward): the socket is made in
 * the pod's network namespace by the addon (socketInNetns), then connected from the loop,
 * without blocking it, like any other socket. IPv4 first, then IPv6, as containerd and
 * CRI-O dial "localhost".
 */
import fs from 'node:fs';
import net from 'node:net';
import { socketInNetns } from '../native/namespaces';

/** A connect to localhost that has not completed by then fails (a listener whose backlog is full drops SYNs). */
export const podConnectTimeoutMs = 10_000;

/**
 * Connects to localhost:`port` (127.0.0.1, then ::1) inside the network namespace at
 * `netnsPath`, or in the daemon's own (the host's) for null. Rejects, leaving no socket
 * behind, with the IPv4 connect's error (ECONNREFUSED when nothing listens, ETIMEDOUT after
 * podConnectTimeoutMs, or the namespace's), the IPv6 one's in its message.
 */
export async function connectInNetns(netnsPath: string | null, port: number): Promise<net.Socket> {
  try {
    return await connectFamily(netnsPath, port, 4);
  } catch (v4) {
    // A bad namespace fails both the same way: no second try.
    if ((v4 as NodeJS.ErrnoException).syscall === 'setns' || (v4 as NodeJS.ErrnoException).syscall === 'open') throw v4;
    try {
      return await connectFamily(netnsPath, port, 6);
    } catch (v6) {
      (v4 as Error).message = `IPv4: ${(v4 as Error).message}; IPv6: ${(v6 as Error).message}`;
      throw v4;
    }
  }
}

async function connectFamily(netnsPath: string | null, port: number, family: 4 | 6): Promise<net.Socket> {
  const host = family === 4 ? '127.0.0.1' : '::1';
  let sock: net.Socket;
  if (netnsPath === null) {
    sock = new net.Socket();
  } else {
    const fd = await socketInNetns(netnsPath, family);
    try {
      sock = new net.Socket({ fd, readable: true, writable: true });
    } catch (e) {
      fs.close(fd, () => {});
      throw e;
    }
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(Object.assign(new Error(`connect ETIMEDOUT ${host}:${port}`), { code: 'ETIMEDOUT' })), podConnectTimeoutMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    sock.once('error', fail);
    sock.connect({ port, host, family }, () => {
      clearTimeout(timer);
      sock.removeListener('error', fail);
      resolve(sock);
    });
  });
}
