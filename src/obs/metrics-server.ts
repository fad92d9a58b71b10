/** The HTTP endpoint serving /metrics from the daemon's registry. */
import http from 'node:http';
import type { Registry } from 'prom-client';
import { listenOn } from '../util/listen';

export interface MetricsServer {
  /** host:port actually bound (the port is real when 0 was asked) */
  address: string;
  close(): Promise<void>;
}

export async function startMetricsServer(address: string, registry: Registry): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  const bound = await listenOn(server, address);
  return {
    address: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
