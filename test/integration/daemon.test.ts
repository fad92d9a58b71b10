/**
 * The daemon as a whole process, as an operator and kubelet meet it: the CRI socket, the
 * built RPCs through a client made from our proto, /metrics, request ids in the logs,
 * socket guarding, graceful stop with a call in flight, SIGHUP, and two daemons side by side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { CriClient } from '../helpers/cri-client';
import { mainJs, makeTempDir, startTestDaemon } from '../helpers/daemon';

async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('Version, Status, RuntimeConfig and an unimplemented RPC over the socket', async () => {
  const d = await startTestDaemon();
  const client = new CriClient(d.socket);
  try {
    assert.equal(fs.statSync(d.socket).mode & 0o777, 0o600);
    const v = await client.call('Version', { version: 'v1' });
    assert.equal(v.runtime_name, 'nodecri');
    assert.equal(v.runtime_version, JSON.parse(fs.readFileSync(path.resolve(mainJs, '..', '..', '..', 'package.json'), 'utf8')).version);
    assert.equal(v.runtime_api_version, 'v1');

    const s = await client.call('Status', { verbose: true });
    const cond = (t: string) => s.status?.conditions.find((c) => c.type === t);
    assert.equal(cond('RuntimeReady')?.status, true);
    assert.equal(cond('NetworkReady')?.status, false);
    assert.equal(cond('NetworkReady')?.reason, 'NetworkPluginNotReady');
    assert.match(cond('NetworkReady')?.message ?? '', /no CNI configuration/);
    const effective = JSON.parse(s.info.config) as { root: string; runroot: string };
    assert.equal(effective.root, d.root);
    assert.equal(effective.runroot, d.runroot);

    // A CNI config appearing later makes the network ready without a restart.
    fs.mkdirSync(path.join(d.dir, 'cni'), { recursive: true });
    fs.writeFileSync(path.join(d.dir, 'cni', '10-test.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'test', plugins: [{ type: 'bridge' }] }));
    await until('NetworkReady', async () => {
      const st = await client.call('Status', {});
      return st.status?.conditions.find((c) => c.type === 'NetworkReady')?.status === true;
    });

    const rc = await client.call('RuntimeConfig', {});
    assert.equal(rc.linux?.cgroup_driver, 'CGROUPFS');
    await client.call('UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: '10.244.0.0/24' } } });

    await assert.rejects(client.call('CheckpointContainer', { container_id: 'abc' }), (e: ServiceError) => {
      assert.equal(e.code, Status.UNIMPLEMENTED);
      assert.match(e.details, /CheckpointContainer/);
      return true;
    });
  } finally {
    client.close();
    await d.cleanup();
  }
});

test('metrics and logs: counters, errors by code, latency histogram, request ids', async () => {
  const d = await startTestDaemon({ args: ['--metrics-address', '127.0.0.1:0', '--log-level', 'debug'] });
  const client = new CriClient(d.socket);
  try {
    for (let i = 0; i < 3; i++) await client.call('Version', {});
    await assert.rejects(client.call('CheckpointContainer', { container_id: 'x' }));
    assert.ok(d.metricsAddress);
    const res = await fetch(`http://${d.metricsAddress}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /nodecri_operations_total\{operation="Version"\} 3/);
    assert.match(text, /nodecri_operations_errors_total\{operation="CheckpointContainer",code="UNIMPLEMENTED"\} 1/);
    assert.match(text, /nodecri_operations_duration_seconds_bucket\{le="0.00025",operation="Version"\} \d+/);
    assert.match(text, /nodecri_operations_duration_seconds_count\{operation="Version"\} 3/);
    assert.match(text, /process_resident_memory_bytes/);
    assert.match(text, /nodejs_eventloop_lag_p99_seconds \d/);
    assert.match(text, /nodejs_eventloop_lag_seconds \d/);
    await until('log lines', () => d.logs.some((l) => l.operation === 'CheckpointContainer' && l.level === 'error'));
    const errLine = d.logs.find((l) => l.operation === 'CheckpointContainer' && l.level === 'error')!;
    assert.equal(errLine.code, 'UNIMPLEMENTED');
    assert.match(String(errLine.requestId), /^[0-9a-f]{16}$/);
    const reqLine = d.logs.find((l) => l.operation === 'Version' && l.msg === 'request');
    assert.match(String(reqLine?.requestId), /^[0-9a-f]{16}$/);
  } finally {
    client.close();
    await d.cleanup();
  }
});

test('a second daemon on the same root, runroot or socket refuses to start, touching nothing; a stale socket is replaced', async () => {
  const first = await startTestDaemon();
  try {
    const lockHeld = new RegExp(`nodecri\\.lock is held by nodecri pid ${first.workerPid}: one daemon per root and runroot`);
    const second = await startTestDaemon({ dir: first.dir, expectFailure: true });
    assert.notEqual((await second.exited).code, 0);
    assert.match(second.stderr(), lockHeld);
    // The same root with a socket and runroot of its own, then the same runroot with a root
    // of its own: both stop before their first step (no socket, no image store).
    const other = makeTempDir();
    try {
      const sameRoot = await startTestDaemon({ dir: other, expectFailure: true, args: ['--root', first.root] });
      assert.notEqual((await sameRoot.exited).code, 0);
      assert.match(sameRoot.stderr(), lockHeld);
      assert.equal(fs.existsSync(sameRoot.socket), false, 'no socket of its own');
      const sameRunroot = await startTestDaemon({ dir: other, expectFailure: true, args: ['--runroot', first.runroot, '--listen', path.join(other, 'x.sock')] });
      assert.notEqual((await sameRunroot.exited).code, 0);
      assert.match(sameRunroot.stderr(), lockHeld);
      assert.equal(fs.existsSync(path.join(other, 'root', 'images')), false, 'no image store of its own');
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
    // A daemon on the same socket with a root and runroot of its own is refused by the socket.
    const sameSocket = await startTestDaemon({ expectFailure: true, args: ['--listen', first.socket] });
    assert.notEqual((await sameSocket.exited).code, 0);
    assert.match(sameSocket.stderr(), /another daemon is already listening on .*nodecri\.sock/);
    await sameSocket.cleanup();
    const client = new CriClient(first.socket);
    await client.call('Version', {});
    client.close();

    // kill -9 leaves the socket file behind: the next daemon replaces it.
    first.proc.kill('SIGKILL');
    await first.exited;
    assert.ok(fs.existsSync(first.socket));
    const third = await startTestDaemon({ dir: first.dir });
    try {
      assert.ok(third.logs.some((l) => l.msg === 'removing stale socket of a daemon that is gone'));
      const c = new CriClient(third.socket);
      await c.call('Version', {});
      c.close();
    } finally {
      await third.cleanup();
    }
  } finally {
    await first.cleanup();
  }
});

test('a path that is not a socket is never replaced', async () => {
  const dir = makeTempDir();
  try {
    fs.mkdirSync(path.join(dir, 'run'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'run', 'nodecri.sock'), 'precious');
    const d = await startTestDaemon({ dir, expectFailure: true });
    assert.notEqual((await d.exited).code, 0);
    assert.match(d.stderr(), /exists and is not a socket/);
    assert.equal(fs.readFileSync(path.join(dir, 'run', 'nodecri.sock'), 'utf8'), 'precious');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGTERM with a call in flight: the call completes, the socket is removed, exit 0', async () => {
  const d = await startTestDaemon({ env: { NODECRI_FAULTS: 'delay:Version=2000' }, args: ['--log-level', 'debug'] });
  const client = new CriClient(d.socket);
  try {
    const inFlight = client.call('Version', {});
    // The daemon logs the request as its handler begins (then held 2 s by the fault).
    await until('the call to reach the daemon', () => d.logs.some((l) => l.msg === 'request' && l.operation === 'Version'));
    d.proc.kill('SIGTERM');
    const v = await inFlight;
    assert.equal(v.runtime_name, 'nodecri');
    const { code } = await d.exited;
    assert.equal(code, 0);
    assert.equal(fs.existsSync(d.socket), false);
    assert.equal(fs.existsSync(path.join(d.runroot, 'nodecri.pid')), false);
    assert.ok(d.logs.some((l) => l.msg === 'nodecri stopped'));
  } finally {
    client.close();
    await d.cleanup();
  }
});

test('SIGHUP applies the log level; a changed root keeps its running value and is named as needing a restart', async () => {
  const d = await startTestDaemon({ rootInConfig: true, config: 'log_level = "info"\n' });
  const client = new CriClient(d.socket);
  try {
    await client.call('Version', {});
    assert.equal(
      d.logs.some((l) => l.msg === 'request'),
      false,
    );
    const otherRoot = path.join(d.dir, 'other-root');
    fs.writeFileSync(d.configFile, `root = "${otherRoot}"\nlog_level = "debug"\n`);
    d.proc.kill('SIGHUP');
    await until('reload', () => d.logs.some((l) => l.msg === 'configuration reloaded'));
    const warnings = d.logs.filter((l) => l.level === 'warn' && typeof l.key === 'string');
    assert.deepEqual(
      warnings.map((l) => ({ key: l.key, source: l.source })),
      [{ key: 'root', source: d.configFile }],
    );
    assert.match(String(warnings[0].msg), /^root changed .* only at a restart/);
    const reloaded = d.logs.find((l) => l.msg === 'configuration reloaded')!;
    assert.deepEqual({ applied: reloaded.applied, needRestart: reloaded.needRestart }, { applied: ['log_level'], needRestart: ['root'] });
    await client.call('Version', {});
    await until('debug request line', () => d.logs.some((l) => l.msg === 'request' && l.operation === 'Version'));
    const s = await client.call('Status', { verbose: true });
    const effective = JSON.parse(s.status ? s.info.config : '{}') as { root: string; logLevel: string };
    assert.deepEqual({ root: effective.root, logLevel: effective.logLevel }, { root: d.root, logLevel: 'debug' });
    assert.equal(fs.existsSync(otherRoot), false, 'nothing was made under the new root');
  } finally {
    client.close();
    await d.cleanup();
  }
});

test('two daemons with their own root, runroot and socket run side by side', async () => {
  const a = await startTestDaemon();
  const b = await startTestDaemon();
  const ca = new CriClient(a.socket);
  const cb = new CriClient(b.socket);
  try {
    const [va, vb] = await Promise.all([ca.call('Version', {}), cb.call('Version', {})]);
    assert.equal(va.runtime_name, 'nodecri');
    assert.equal(vb.runtime_name, 'nodecri');
    assert.notEqual(a.socket, b.socket);
    // Neither wrote into the other's dirs.
    assert.deepEqual(fs.readdirSync(a.runroot).sort(), ['exits', 'nodecri.lock', 'nodecri.pid', 'nodecri.sock']);
    assert.deepEqual(fs.readdirSync(b.runroot).sort(), ['exits', 'nodecri.lock', 'nodecri.pid', 'nodecri.sock']);
  } finally {
    ca.close();
    cb.close();
    await a.cleanup();
    await b.cleanup();
  }
});

test('start-up fails on a bad config with the file and the key named', async () => {
  const unknown = await startTestDaemon({ dropIns: { '10-typo.toml': '[metrics]\nadress = "127.0.0.1:1"\n' }, expectFailure: true });
  assert.notEqual((await unknown.exited).code, 0);
  assert.match(unknown.stderr(), /10-typo\.toml/);
  assert.match(unknown.stderr(), /metrics\.adress/);
  await unknown.cleanup();

  const wrongType = await startTestDaemon({ config: 'shutdown_timeout = "soon"\n', expectFailure: true });
  assert.notEqual((await wrongType.exited).code, 0);
  assert.match(wrongType.stderr(), /nodecri\.toml/);
  assert.match(wrongType.stderr(), /shutdown_timeout/);
  await wrongType.cleanup();
});

test('`nodecri config` prints a config file that loads back to the same effective config', () => {
  const dir = makeTempDir();
  try {
    const conf = path.join(dir, 'a.toml');
    const dropDir = path.join(dir, 'd');
    fs.mkdirSync(dropDir);
    fs.writeFileSync(conf, 'log_level = "warn"\n[metrics]\nenabled = true\n');
    fs.writeFileSync(path.join(dropDir, '50-net.toml'), '[network]\ncni_plugin_dirs = ["/x/bin"]\n');
    const run = (args: string[]) => spawnSync(process.execPath, [mainJs, ...args], { encoding: 'utf8' });
    const first = run(['config', '--config', conf, '--config-dir', dropDir, '--root', '/srv/nodecri']);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /log_level = "warn"/);
    assert.match(first.stdout, /"\/x\/bin"/);
    const out = path.join(dir, 'out.toml');
    fs.writeFileSync(out, first.stdout);
    const empty = path.join(dir, 'empty.d');
    fs.mkdirSync(empty);
    const second = run(['config', '--config', out, '--config-dir', empty]);
    assert.equal(second.status, 0, second.stderr);
    assert.equal(second.stdout, first.stdout);

    const defaults = run(['config', '--default']);
    assert.equal(defaults.status, 0, defaults.stderr);
    assert.match(defaults.stdout, /root = "\/var\/lib\/nodecri"/);
    const version = run(['version']);
    assert.match(version.stdout, /^nodecri \d+\.\d+\.\d+/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('with tracing on, a span per RPC is exported over OTLP/HTTP', async () => {
  const http = await import('node:http');
  const posts: { url: string; bytes: number }[] = [];
  const collector = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      posts.push({ url: req.url ?? '', bytes });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  const port = (collector.address() as { port: number }).port;
  const d = await startTestDaemon({ config: `[tracing]\nenabled = true\nendpoint = "http://127.0.0.1:${port}/v1/traces"\n` });
  const client = new CriClient(d.socket);
  try {
    await client.call('Version', {});
    await client.call('Status', {});
    client.close();
    // A graceful stop flushes the batch.
    d.proc.kill('SIGTERM');
    assert.equal((await d.exited).code, 0);
    assert.ok(
      posts.some((p) => p.url === '/v1/traces' && p.bytes > 0),
      `collector got ${JSON.stringify(posts)}`,
    );
  } finally {
    client.close();
    await d.cleanup();
    collector.close();
  }
});

/**
 * Watches `p` from a process of its own, in a tight lstat loop (an event loop would miss a
 * window of microseconds), from before `during` starts until it settles; returns every
 * distinct "mode uid:gid type" the path was seen with.
 */
async function everySeen<T>(p: string, during: () => Promise<T>): Promise<{ seen: string[]; result: T }> {
  const stop = `${p}.stop-watching`;
  const script = `
    const fs = require('node:fs');
    const [p, stop] = process.argv.slice(1);
    const seen = new Set();
    process.stdout.write('ready\\n');
    for (let i = 0; ; i++) {
      try {
        const s = fs.lstatSync(p);
        seen.add((s.mode & 0o7777).toString(8) + ' ' + s.uid + ':' + s.gid + ' ' + (s.isSocket() ? 'socket' : 'other'));
      } catch {}
      if ((i & 1023) === 0 && fs.existsSync(stop)) break;
    }
    process.stdout.write(JSON.stringify([...seen]) + '\\n');
  `;
  const { spawn } = await import('node:child_process');
  const watcher = spawn(process.execPath, ['-e', script, p, stop], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  watcher.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => watcher.once('exit', () => resolve()));
  try {
    await until('the watcher', () => out.startsWith('ready\n'));
    const result = await during();
    fs.mkdirSync(path.dirname(stop), { recursive: true });
    fs.writeFileSync(stop, '');
    await exited;
    return { seen: JSON.parse(out.slice('ready\n'.length)) as string[], result };
  } finally {
    watcher.kill('SIGKILL');
    fs.rmSync(stop, { force: true });
  }
}

test('the socket only ever appears with its final mode: 0600 root only, 0660 with [api] socket_group', async () => {
  // The default: root only.
  const dir = makeTempDir();
  const socket = path.join(dir, 'run', 'nodecri.sock');
  const { seen, result: d } = await everySeen(socket, () => startTestDaemon({ dir }));
  try {
    assert.deepEqual(seen, ['600 0:0 socket']);
    // nothing else is left beside it (no private dir of the bind)
    assert.deepEqual(fs.readdirSync(d.runroot).sort(), ['exits', 'nodecri.lock', 'nodecri.pid', 'nodecri.sock']);
    const c = new CriClient(d.socket);
    await c.call('Version', {});
    c.close();
  } finally {
    await d.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  // A group by name (one the host has), and a bare gid.
  const line = fs
    .readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find((l) => /^[a-z_][^:]*:[^:]*:[1-9]\d*:/.test(l));
  assert.ok(line, 'the host has a group other than root');
  const [name, , gid] = line.split(':');
  for (const [group, want] of [
    [name, Number(gid)],
    ['4321', 4321],
  ] as const) {
    const gdir = makeTempDir();
    const gsocket = path.join(gdir, 'run', 'nodecri.sock');
    const { seen: gseen, result: g } = await everySeen(gsocket, () => startTestDaemon({ dir: gdir, config: `[api]\nsocket_group = "${group}"\n` }));
    try {
      assert.deepEqual(gseen, [`660 0:${want} socket`], `socket_group = "${group}"`);
      const c = new CriClient(g.socket);
      await c.call('Version', {});
      c.close();
    } finally {
      await g.cleanup();
      fs.rmSync(gdir, { recursive: true, force: true });
    }
  }

  // A group the host does not know stops the start, naming the key.
  const bad = await startTestDaemon({ config: '[api]\nsocket_group = "no-such-group-nodecri"\n', expectFailure: true });
  assert.notEqual((await bad.exited).code, 0);
  assert.match(bad.stderr(), /api\.socket_group/);
  assert.match(bad.stderr(), /no-such-group-nodecri/);
  assert.equal(fs.existsSync(bad.socket), false);
  await bad.cleanup();
});

test('an id of 100 KB gets a short NOT_FOUND, and the connection serves the next call', async () => {
  const d = await startTestDaemon();
  const client = new CriClient(d.socket);
  try {
    for (const [rpc, req] of [
      ['ContainerStatus', { container_id: 'x'.repeat(100_000) }],
      ['PodSandboxStatus', { pod_sandbox_id: 'y'.repeat(100_000) }],
    ] as const) {
      await assert.rejects(client.call(rpc, req as never), (e: ServiceError) => {
        assert.equal(e.code, Status.NOT_FOUND, e.details);
        assert.ok(Buffer.byteLength(e.details) <= 2048, `${Buffer.byteLength(e.details)} bytes of details`);
        assert.match(e.details, /\(\d+ bytes in all, truncated\)$/);
        return true;
      });
    }
    assert.equal((await client.call('Version', {})).runtime_name, 'nodecri');
  } finally {
    client.close();
    await d.cleanup();
  }
});
