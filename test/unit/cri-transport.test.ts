/**
 * Clients that send the socket path as their HTTP/2 authority (grpc-go before Kubernetes
 * 1.30: kubelet, crictl and critest 1.26) are served, every request of the connection, as
 * are clients that send a proper authority.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/obs/logger';
import { createMetrics } from '../../src/obs/metrics';
import { startCriServer, type CriServer } from '../../src/cri/server';
import type { CriDeps } from '../../src/cri/deps';
import { version } from '../../src/cri/runtime/version';
import { validAuthority } from '../../src/cri/transport';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-transport-'));
const socketPath = path.join(dir, 'cri.sock');
let server: CriServer;

before(async () => {
  const deps = { runtime: { name: 'nodecri', version: '1.2.3', apiVersion: 'v1', cgroupDriver: 'cgroupfs', effectiveConfig: () => ({}) } } as unknown as CriDeps;
  server = await startCriServer({ socketPath, socketGid: null, deps, log: createLogger('fatal'), metrics: createMetrics(), handlers: { Version: version } });
});

after(async () => {
  await server.shutdown(1000);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** One gRPC unary call on an open session, with the given authority; resolves to the body. */
function versionCall(session: http2.ClientHttp2Session, authority: string): Promise<{ status: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ':method': 'POST',
      ':path': '/runtime.v1.RuntimeService/Version',
      ':authority': authority,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'grpc-go/1.51.0',
    });
    const chunks: Buffer[] = [];
    let status = '';
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
    });
    req.on('trailers', (t) => (status = String(t['grpc-status'])));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    // An empty VersionRequest: the 5-byte gRPC message prefix and no bytes.
    req.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

function connect(): http2.ClientHttp2Session {
  return http2.connect('http://localhost', { createConnection: () => net.connect(socketPath) });
}

test('valid authorities are what nghttp2 accepts', () => {
  assert.ok(validAuthority('localhost'));
  assert.ok(validAuthority('127.0.0.1:5000'));
  assert.ok(!validAuthority('/run/nodecri/nodecri.sock'));
});

for (const authority of ['/run/nodecri/nodecri.sock', 'localhost']) {
  test(`requests with authority ${authority} are served, many on one connection`, async () => {
    const session = connect();
    try {
      for (let i = 0; i < 20; i++) {
        const r = await versionCall(session, authority);
        assert.equal(r.status, '0');
        assert.ok(r.body.includes(Buffer.from('nodecri')), 'the response names the runtime');
        assert.ok(r.body.includes(Buffer.from('1.2.3')));
      }
      const parallel = await Promise.all(Array.from({ length: 10 }, () => versionCall(session, authority)));
      assert.ok(parallel.every((r) => r.status === '0'));
    } finally {
      session.close();
    }
  });
}
