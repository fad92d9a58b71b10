/**
 * The CRI gRPC layer in-process: every RPC is registered, the built ones answer, the
 * others say UNIMPLEMENTED with their name, and the per-RPC wrapper logs (with request
 * ids and redacted secrets), counts and times each call.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { createLogger } from '../../src/obs/logger';
import { createMetrics } from '../../src/obs/metrics';
import { startCriServer, type CriServer } from '../../src/cri/server';
import type { CriDeps } from '../../src/cri/deps';
import type { SandboxService } from '../../src/sandbox/service';
import { invalidArgument } from '../../src/domain/errors';
import { version } from '../../src/cri/runtime/version';
import { CriClient } from '../helpers/cri-client';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-cri-'));
const socketPath = path.join(dir, 'nested', 'cri.sock');
const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
    cb();
  },
});
const log = createLogger('debug', sink);
const metrics = createMetrics();
let podCidr = '';
const deps: CriDeps = {
  runtime: { name: 'nodecri', version: '9.9.9', apiVersion: 'v1', cgroupDriver: 'cgroupfs', effectiveConfig: () => ({ root: '/x' }) },
  network: {
    status: () => ({ ready: false, reason: 'NetworkPluginNotReady', message: 'no config' }),
    podCidr: () => podCidr,
    setPodCidr: (c) => {
      podCidr = c;
    },
  },
  // The handlers under test here never reach the domain services.
  sandboxes: null as unknown as SandboxService,
  containers: null as unknown as CriDeps['containers'],
  events: null as unknown as CriDeps['events'],
  // The image RPCs are replaced below or not called.
  images: {} as CriDeps['images'],
  streaming: null as unknown as CriDeps['streaming'],
};
let server: CriServer;
let client: CriClient;

before(async () => {
  server = await startCriServer({
    socketPath,
    socketGid: null,
    deps,
    log,
    metrics,
    handlers: {
      Version: version,
      // A handler failing on input, to see the error path.
      ContainerStatus: async () => {
        throw invalidArgument('container id is empty');
      },
      ListImages: async () => {
        throw new Error('boom: an internal bug');
      },
    },
  });
  client = new CriClient(socketPath);
});

after(async () => {
  client.close();
  await server.shutdown(1000);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the socket is created with mode 0600 (no group given) in a created dir, and nothing beside it', () => {
  const st = fs.statSync(socketPath);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(path.dirname(socketPath)), ['cri.sock']);
});

test('Version answers', async () => {
  const v = await client.call('Version', { version: 'v1' });
  assert.equal(v.runtime_name, 'nodecri');
  assert.equal(v.runtime_version, '9.9.9');
  assert.equal(v.runtime_api_version, 'v1');
});

test('an RPC without a handler is UNIMPLEMENTED and named', async () => {
  await assert.rejects(client.call('CheckpointContainer', { container_id: 'x' }), (e: ServiceError) => {
    assert.equal(e.code, Status.UNIMPLEMENTED);
    assert.match(e.details, /RuntimeService\/CheckpointContainer/);
    return true;
  });
  await assert.rejects(client.call('ImageFsInfo', {}), (e: ServiceError) => e.code === Status.UNIMPLEMENTED && /ImageService\/ImageFsInfo/.test(e.details));
});

test('a domain error keeps its code and message; a bug is UNKNOWN without internals', async () => {
  await assert.rejects(client.call('ContainerStatus', { container_id: '' }), (e: ServiceError) => {
    assert.equal(e.code, Status.INVALID_ARGUMENT);
    assert.equal(e.details, 'container id is empty');
    assert.match(String(e.metadata.get('nodecri-request-id')[0]), /^[0-9a-f]{16}$/);
    return true;
  });
  await assert.rejects(client.call('ListImages', {}), (e: ServiceError) => {
    assert.equal(e.code, Status.UNKNOWN);
    assert.doesNotMatch(e.details, /boom/);
    assert.match(e.details, /internal error \(request [0-9a-f]{16}\)/);
    return true;
  });
  const bug = lines.find((l) => l.operation === 'ListImages' && l.level === 'error');
  assert.ok(bug, 'the bug is logged');
  assert.match(JSON.stringify(bug.err), /boom/);
});

/** The value of one metric series (its full name with labels), 0 while it has none. */
async function metricValue(series: string): Promise<number> {
  const line = (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

// Makes the calls it counts: the counts are compared with those before, whatever ran earlier.
test('every call is counted, timed and logged with its request id', async () => {
  const series = [
    'nodecri_operations_total{operation="Version"}',
    'nodecri_operations_errors_total{operation="ContainerStatus",code="INVALID_ARGUMENT"}',
    'nodecri_operations_errors_total{operation="CheckpointContainer",code="UNIMPLEMENTED"}',
  ];
  const before = await Promise.all(series.map(metricValue));
  await client.call('Version', {});
  await assert.rejects(client.call('ContainerStatus', { container_id: '' }), (e: ServiceError) => e.code === Status.INVALID_ARGUMENT);
  await assert.rejects(client.call('CheckpointContainer', { container_id: 'x' }), (e: ServiceError) => e.code === Status.UNIMPLEMENTED);
  assert.deepEqual(
    await Promise.all(series.map(metricValue)),
    before.map((n) => n + 1),
  );
  const text = await metrics.registry.metrics();
  assert.match(text, /nodecri_operations_duration_seconds_bucket\{le="0.0001",operation="Version"\}/);
  const req = lines.find((l) => l.operation === 'Version' && l.msg === 'request');
  const res = lines.find((l) => l.operation === 'Version' && l.msg === 'response' && l.requestId === req?.requestId);
  assert.ok(req && res, 'request and response lines share a request id');
  const err = lines.find((l) => l.operation === 'ContainerStatus' && l.level === 'error');
  assert.equal(err?.code, 'INVALID_ARGUMENT');
  assert.match(String(err?.requestId), /^[0-9a-f]{16}$/);
});

test('registry credentials never reach the log', async () => {
  await assert.rejects(
    client.call('PullImage', {
      image: { image: 'busybox' },
      auth: { username: 'u', password: 'hunter2-secret', auth: 'dTpodW50ZXIy', identity_token: 'idtok-secret', registry_token: 'regtok-secret' },
    }),
  );
  const pulled = lines.filter((l) => l.operation === 'PullImage');
  assert.ok(pulled.length > 0);
  const text = JSON.stringify(pulled);
  for (const secret of ['hunter2-secret', 'dTpodW50ZXIy', 'idtok-secret', 'regtok-secret']) assert.doesNotMatch(text, new RegExp(secret));
  assert.match(text, /"username":"u"/);
});
