/** Binding an HTTP(S) server to a configured "host:port", the way every listener of the daemon does. */
import type { AddressInfo, Server } from 'node:net';

/** Splits "host:port" (IPv6 hosts in brackets) into its parts. */
export function splitHostPort(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(address);
  if (!m) throw new Error(`invalid address ${JSON.stringify(address)}: expected host:port`);
  return { host: m[1], port: Number(m[2]) };
}

/** Listens on `address` ("host:port", port 0 for a free one) and resolves with the "host:port" actually bound (IPv6 in brackets). */
export async function listenOn(server: Server, address: string): Promise<string> {
  const { host, port } = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
}
