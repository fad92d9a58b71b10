/**
 * The streaming server in process, against a fake domain, through the test clients of
 * test/helpers/streaming-client.ts (and raw requests where a test needs what no client
 * would send).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { openPortForward, openRemoteCommand, runRemoteCommand, type StreamTransport, UpgradeRefused } from '../../test/helpers/streaming-client';
import type { StreamIO, TerminalSize } from '../domain/stream-io';
import { createLogger } from '../obs/logger';
import type { StreamingDomain } from './requests';
import { tokenTtlMs } from './request-cache';
import { readStreamingTls, StreamingServer } from './server';
import { RstStatus, type SpdyError, SpdySession, type SpdyStream } from './spdy/session';
import { maxUnpairedPortForwardStreams } from './spdy-transport';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const log = createLogger('fatal');

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** What the fake domain saw, for the tests to wait on. */
const seen = {
  started: deferred<StreamIO>(),
  aborted: deferred<void>(),
  sizes: [] as TerminalSize[],
  /** flood: server-side bytes buffered each time the domain had to wait for a drain */
  blockedBuffers: [] as number[],
  blocked: deferred<number>(),
  /** slowcat: the most stdin held unread on the server */
  stdinBuffered: 0,
};

function reset(): void {
  seen.started = deferred();
  seen.aborted = deferred();
  seen.sizes = [];
  seen.blockedBuffers = [];
  seen.blocked = deferred();
  seen.stdinBuffered = 0;
}

const floodBytes = 32 << 20;

/** Commands of the fake exec: the first word says what it does. */
const domain: StreamingDomain = {
  async execStream(_id, cmd, io, signal) {
    seen.started.resolve(io);
    switch (cmd[0]) {
      case 'echo':
        io.stdout?.write(`${cmd.slice(1).join(' ')}\n`);
        io.stderr?.write('to stderr\n');
        return { exitCode: 0 };
      case 'exit':
        return { exitCode: Number(cmd[1]) };
      case 'fail':
        throw new Error('boom');
      case 'cat': {
        const stdin = io.stdin!;
        stdin.pipe(io.stdout!, { end: false });
        await once(stdin, 'end');
        return { exitCode: 0 };
      }
      case 'slowcat': {
        // reads a chunk, yields to the loop, reads the next: the client is faster
        const stdin = io.stdin!;
        let total = 0;
        for await (const chunk of stdin) {
          seen.stdinBuffered = Math.max(seen.stdinBuffered, stdin.readableLength);
          total += (chunk as Buffer).length;
          await new Promise((r) => setImmediate(r));
        }
        io.stdout?.write(`${total}\n`);
        return { exitCode: 0 };
      }
      case 'sizes':
        io.onResize((s) => {
          seen.sizes.push(s);
          io.stdout?.write(`${s.width}x${s.height}\n`);
        });
        io.stdin!.resume();
        await once(io.stdin!, 'end');
        return { exitCode: 0 };
      case 'hang':
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
        seen.aborted.resolve();
        throw new Error('aborted');
      case 'flood': {
        const out = io.stdout!;
        const chunk = Buffer.alloc(64 * 1024, 'x');
        for (let sent = 0; sent < floodBytes; sent += chunk.length) {
          if (out.write(chunk)) continue;
          seen.blockedBuffers.push(out.writableLength + server.bufferedBytes);
          seen.blocked.resolve(sent);
          await once(out, 'drain');
        }
        return { exitCode: 0 };
      }
      case 'floodhang': {
        // queues more than the kernel's buffers take, then waits for the call to be aborted
        const out = io.stdout!;
        const chunk = Buffer.alloc(64 * 1024, 'x');
        out.on('error', () => {});
        for (let i = 0; i < 256; i++) out.write(chunk);
        seen.blocked.resolve(0);
        await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve())));
        seen.aborted.resolve();
        throw new Error('aborted');
      }
      default:
        return { exitCode: 127 };
    }
  },
  async attach(_id, io) {
    io.stdout?.write('attached\n');
    return Promise.resolve();
  },
  portForward(_id, port) {
    if (port === echoPort) return Promise.resolve(net.connect(echoPort, '127.0.0.1'));
    return Promise.reject(new Error(`connect ECONNREFUSED 127.0.0.1:${port}`));
  },
};

let server: StreamingServer;
let clock = Date.now();
let echo: net.Server;
let echoPort = 0;

before(async () => {
  echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as net.AddressInfo).port;
  server = await StreamingServer.start({ address: '127.0.0.1:0', tls: null, domain, log, cache: { now: () => clock } });
});

after(async () => {
  await server.close();
  await new Promise<void>((r) => echo.close(() => r()));
});

const execUrl = (cmd: string[], o: Partial<{ stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }> = {}) =>
  server.exec({ containerId: 'c1', cmd, stdin: false, stdout: true, stderr: false, tty: false, ...o });

const transports: StreamTransport[] = ['spdy', 'websocket'];

describe('streaming server', { timeout: 60_000 }, () => {
  it('serves URLs of kubelet form on its own address', () => {
    assert.match(execUrl(['x']), /^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]{8}$/);
    assert.match(server.attach({ containerId: 'c', stdin: false, stdout: true, stderr: false, tty: false }), /\/attach\/[A-Za-z0-9_-]{8}$/);
    assert.match(server.portForward({ sandboxId: 'p', ports: [80] }), /\/portforward\/[A-Za-z0-9_-]{8}$/);
  });

  for (const transport of transports) {
    describe(`over ${transport}`, () => {
      it('exec: output, exit 0, Success', async () => {
        const r = await runRemoteCommand(execUrl(['echo', 'hi'], { stderr: true }), { transport, stdin: false, stdout: true, stderr: true, tty: false });
        assert.equal(r.stdout.toString(), 'hi\n');
        assert.equal(r.stderr.toString(), 'to stderr\n');
        assert.equal(r.exitCode, 0);
        assert.deepEqual(r.status, { metadata: {}, status: 'Success' });
      });

      it('exec: a non-zero exit is a NonZeroExitCode status with the code', async () => {
        const r = await runRemoteCommand(execUrl(['exit', '7']), { transport, stdin: false, stdout: true, stderr: false, tty: false });
        assert.equal(r.exitCode, 7);
        assert.deepEqual(r.status, {
          metadata: {},
          status: 'Failure',
          message: 'command terminated with non-zero exit code: error executing command [exit 7], exit code 7',
          reason: 'NonZeroExitCode',
          details: { causes: [{ reason: 'ExitCode', message: '7' }] },
        });
      });

      it('exec: a domain failure is an InternalError status', async () => {
        const r = await runRemoteCommand(execUrl(['fail']), { transport, stdin: false, stdout: true, stderr: false, tty: false });
        assert.equal(r.exitCode, null);
        assert.equal(r.error, 'Internal error occurred: error executing command in container: boom');
      });

      it('exec: stdin comes back through cat byte for byte', async () => {
        const input = Buffer.alloc(1 << 20);
        for (let i = 0; i < input.length; i++) input[i] = (i * 7919) & 0xff;
        const r = await runRemoteCommand(execUrl(['cat'], { stdin: true }), { transport, stdin: true, stdout: true, stderr: false, tty: false, input });
        assert.equal(r.exitCode, 0);
        assert.ok(r.stdout.equals(input), `got ${r.stdout.length} bytes`);
      });

      it('exec: a client faster than the command is held back: what stdin holds unread stays bounded', async () => {
        reset();
        const input = Buffer.alloc(3 << 20, 'y');
        const r = await runRemoteCommand(execUrl(['slowcat'], { stdin: true }), { transport, stdin: true, stdout: true, stderr: false, tty: false, input });
        assert.equal(r.stdout.toString(), `${input.length}\n`);
        // the stream's high-water mark and one message or window beyond it, never the backlog
        assert.ok(seen.stdinBuffered <= 256 * 1024, `stdin held ${seen.stdinBuffered} bytes`);
      });

      it('exec: terminal sizes reach the domain, the latest replayed', async () => {
        reset();
        const s = await openRemoteCommand(execUrl(['sizes'], { stdin: true, tty: true }), { transport, stdin: true, stdout: true, stderr: false, tty: true });
        s.resize(80, 24);
        await s.waitFor('80x24');
        s.resize(132, 43);
        await s.waitFor('132x43');
        s.endStdin();
        const r = await s.done;
        assert.equal(r.exitCode, 0);
        assert.deepEqual(seen.sizes, [
          { width: 80, height: 24 },
          { width: 132, height: 43 },
        ]);
      });

      it('attach: Success', async () => {
        const url = server.attach({ containerId: 'c1', stdin: false, stdout: true, stderr: false, tty: false });
        const r = await runRemoteCommand(url, { transport, stdin: false, stdout: true, stderr: false, tty: false });
        assert.equal(r.stdout.toString(), 'attached\n');
        assert.equal(r.exitCode, 0);
      });

      it('a client that goes away aborts the domain call', async () => {
        reset();
        const s = await openRemoteCommand(execUrl(['hang'], { stdin: true }), { transport, stdin: true, stdout: true, stderr: false, tty: false });
        await seen.started.promise;
        s.close();
        await seen.aborted.promise;
      });

      it('a used, unknown or expired token is 404', async () => {
        const url = execUrl(['echo', 'once']);
        await runRemoteCommand(url, { transport, stdin: false, stdout: true, stderr: false, tty: false });
        const refused = (e: unknown) => e instanceof UpgradeRefused && e.statusCode === 404;
        await assert.rejects(runRemoteCommand(url, { transport, stdin: false, stdout: true, stderr: false, tty: false }), refused);
        await assert.rejects(runRemoteCommand(url.replace(/[^/]+$/, 'AAAAAAAA'), { transport, stdin: false, stdout: true, stderr: false, tty: false }), refused);
        const expiring = execUrl(['echo', 'late']);
        clock += tokenTtlMs + 1;
        await assert.rejects(runRemoteCommand(expiring, { transport, stdin: false, stdout: true, stderr: false, tty: false }), refused);
        // a token for one kind of request is not one for another
        const attachUrl = server.attach({ containerId: 'c1', stdin: false, stdout: true, stderr: false, tty: false });
        await assert.rejects(runRemoteCommand(attachUrl.replace('/attach/', '/exec/'), { transport, stdin: false, stdout: true, stderr: false, tty: false }), refused);
      });

      it('port-forward: a connection to the pod port, and the error of one that fails', async () => {
        const pf = await openPortForward(server.portForward({ sandboxId: 'p1', ports: [echoPort, 1] }), { transport });
        const data = await pf.connect(echoPort);
        data.write('ping');
        const [got] = (await once(data, 'data')) as [Buffer];
        assert.equal(got.toString(), 'ping');
        const bad = await pf.connect(1);
        const [err] = (await once(bad, 'error')) as [Error];
        assert.match(err.message, /^error forwarding port 1 to pod p1, uid : connect ECONNREFUSED/);
        pf.close();
      });
    });
  }

  it('websocket: negotiates the first offered protocol it knows; none known is 403', async () => {
    const opts = { transport: 'websocket' as const, stdin: false, stdout: true, stderr: false, tty: false };
    const s = await openRemoteCommand(execUrl(['echo', 'x']), { ...opts, protocol: 'v9.channel.k8s.io, v4.channel.k8s.io, v5.channel.k8s.io' });
    assert.equal(s.protocol, 'v4.channel.k8s.io');
    assert.equal((await s.done).exitCode, 0);
    await assert.rejects(
      openRemoteCommand(execUrl(['echo', 'x']), { ...opts, protocol: 'v9.channel.k8s.io' }),
      (e: unknown) => e instanceof UpgradeRefused && e.statusCode === 403 && /supports \[v5\.channel\.k8s\.io/.test(e.body),
    );
  });

  it('websocket: the pre-v4 protocols carry the error text; base64 frames decode', async () => {
    const opts = { transport: 'websocket' as const, stdin: false, stdout: true, stderr: false, tty: false };
    const ok = await runRemoteCommand(execUrl(['exit', '0']), { ...opts, protocol: 'channel.k8s.io' });
    assert.deepEqual([ok.exitCode, ok.error], [0, null]);
    const failed = await runRemoteCommand(execUrl(['exit', '3']), { ...opts, protocol: 'channel.k8s.io' });
    assert.equal(failed.error, 'command terminated with non-zero exit code: error executing command [exit 3], exit code 3');

    const ws = new WebSocket(execUrl(['echo', 'b64']).replace(/^http/, 'ws'), ['base64.channel.k8s.io']);
    const frames: string[] = [];
    ws.on('message', (m: Buffer) => frames.push(m.toString()));
    await once(ws, 'close');
    assert.deepEqual(frames, ['1', `1${Buffer.from('b64\n').toString('base64')}`]);
  });

  it('a request that does not upgrade is refused (400), an unknown path 404', async () => {
    const get = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        http
          .get(`${server.baseUrl}${path}`, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          })
          .on('error', reject);
      });
    const url = new URL(execUrl(['echo']));
    assert.equal((await get(url.pathname)).status, 400);
    assert.equal((await get('/exec/nothing')).status, 404);
    assert.equal((await get('/other')).status, 404);
    // not a token (they are base64url), and no percent-decoding to throw on
    assert.equal((await get('/exec/%E0%A4%A')).status, 404);
    await assert.rejects(
      runRemoteCommand(`${server.baseUrl}/exec/%E0%A4%A`, { transport: 'spdy', stdin: false, stdout: true, stderr: false, tty: false }),
      (e: unknown) => e instanceof UpgradeRefused && e.statusCode === 404,
    );
  });

  it('a slow client keeps what the server buffers bounded', async () => {
    reset();
    const ws = new WebSocket(execUrl(['flood']).replace(/^http/, 'ws'), ['v5.channel.k8s.io']);
    await once(ws, 'open');
    ws.pause(); // reads nothing: the kernel's buffers fill, then the server's
    await seen.blocked.promise;
    let received = 0;
    ws.on('message', (m: Buffer) => {
      if (m[0] === 1) received += m.length - 1;
    });
    ws.resume();
    await once(ws, 'close');
    assert.equal(received, floodBytes);
    // Each time the domain was told to wait, the server held at most the chunk in its stdout
    // stream and the frame on the socket that the kernel had not taken: never the backlog.
    assert.ok(seen.blockedBuffers.length > 0);
    const most = Math.max(...seen.blockedBuffers);
    assert.ok(most <= 2 * (64 * 1024 + 16), `the server buffered ${most} bytes`);
  });

  it('spdy: negotiates the first offered version it knows; before v4 the error stream has the message', async () => {
    const opts = { transport: 'spdy' as const, stdin: false, stdout: true, stderr: false, tty: false };
    const s = await openRemoteCommand(execUrl(['exit', '0']), { ...opts, protocol: 'v9.channel.k8s.io, v3.channel.k8s.io, v4.channel.k8s.io' });
    assert.equal(s.protocol, 'v3.channel.k8s.io');
    assert.deepEqual([(await s.done).exitCode, (await s.done).status], [0, null]);
    for (const protocol of ['v2.channel.k8s.io', 'channel.k8s.io']) {
      const r = await runRemoteCommand(execUrl(['exit', '3']), { ...opts, protocol });
      assert.equal(r.error, 'command terminated with non-zero exit code: error executing command [exit 3], exit code 3', protocol);
    }
  });

  it('spdy port-forward: streams at once, 4 MiB each way whole; pairs without requestID; bad streams reset', async () => {
    const pf = await openPortForward(server.portForward({ sandboxId: 'p1', ports: [] }), { transport: 'spdy' });
    const [a, b] = await Promise.all([pf.connect(echoPort), pf.connect(echoPort)]);
    const big = randomBytes(4 << 20);
    const got: Buffer[] = [];
    let n = 0;
    const whole = new Promise<void>((resolve) =>
      a.on('data', (c: Buffer) => {
        got.push(c);
        if ((n += c.length) === big.length) resolve();
      }),
    );
    a.write(big);
    b.write('ping');
    const [pong] = (await once(b, 'data')) as [Buffer];
    assert.equal(pong.toString(), 'ping');
    await whole;
    assert.ok(Buffer.concat(got).equals(big));
    pf.close();

    // an old client: no requestID, the pair is error n and data n+2
    const { session } = await rawSpdy(server.portForward({ sandboxId: 'p1', ports: [] }), 'portforward.k8s.io');
    await session.openStream({ streamtype: 'error', port: String(echoPort) }, { fin: true });
    const data = await session.openStream({ streamtype: 'data', port: String(echoPort) });
    data.on('error', () => {});
    data.write('old');
    const [old] = (await once(data, 'data')) as [Buffer];
    assert.equal(old.toString(), 'old');
    // a connection whose stream the client resets is closed on the pod's side
    const closed = once(echo, 'connection').then(([sock]) => once(sock as net.Socket, 'close'));
    await session.openStream({ streamtype: 'error', port: String(echoPort), requestid: 'r' }, { fin: true });
    const doomed = await session.openStream({ streamtype: 'data', port: String(echoPort), requestid: 'r' });
    doomed.on('error', () => {});
    doomed.write('x');
    await once(doomed, 'data');
    doomed.reset();
    await closed;

    const bad = await session.openStream({ streamtype: 'data', port: '0', requestid: '9' });
    const [reset] = (await once(bad, 'error')) as [Error];
    assert.match(reset.message, /reset by the peer/);
    session.destroy();
  });

  it('spdy: a slow client keeps what the server buffers bounded (flow control)', async () => {
    reset();
    const { session } = await rawSpdy(execUrl(['flood']));
    await session.openStream({ streamtype: 'error' }, { fin: true });
    const stdout = await session.openStream({ streamtype: 'stdout' }, { fin: true });
    stdout.pause(); // reads nothing: the stream's window closes, then the server's stream buffers
    await seen.blocked.promise;
    let received = 0;
    stdout.on('data', (b: Buffer) => (received += b.length));
    stdout.resume();
    await once(stdout, 'end');
    assert.equal(received, floodBytes);
    session.destroy();
    const most = Math.max(...seen.blockedBuffers);
    // the session stops taking DATA once its socket holds its outbound mark (256 KiB by
    // default); beyond that, the chunk in the stdout stream and the frame being written
    assert.ok(most <= 512 * 1024, `the server buffered ${most} bytes`);
  });

  it('spdy: the httpstream handshake refuses as apimachinery does', async () => {
    const upgrade = (headers: Record<string, string>) =>
      new Promise<{ status: number; body: string; accepted: string[] }>((resolve, reject) => {
        const req = http.request(execUrl(['echo']), { method: 'POST', headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', ...headers } });
        req.on('upgrade', () => reject(new Error('upgraded')));
        req.on('response', (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => {
            const accepted: string[] = [];
            for (let i = 0; i < res.rawHeaders.length; i += 2) if (res.rawHeaders[i] === 'X-Accepted-Stream-Protocol-Versions') accepted.push(res.rawHeaders[i + 1]);
            resolve({ status: res.statusCode ?? 0, body, accepted });
          });
        });
        req.on('error', reject);
        req.end();
      });
    const missing = await upgrade({});
    assert.equal(missing.status, 400);
    assert.match(missing.body, /^unable to upgrade: header X-Stream-Protocol-Version does not exist in request/);
    const none = await upgrade({ 'X-Stream-Protocol-Version': 'v9.channel.k8s.io, v5.channel.k8s.io' });
    assert.equal(none.status, 403);
    assert.match(none.body, /client supports \[v9\.channel\.k8s\.io v5\.channel\.k8s\.io\], server accepts \[v4\.channel\.k8s\.io v3/);
    assert.deepEqual(none.accepted, ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io']);
    const notSpdy = await upgrade({ 'X-Stream-Protocol-Version': 'v4.channel.k8s.io', Upgrade: 'h2c' });
    assert.equal(notSpdy.status, 400);
    assert.match(notSpdy.body, /missing upgrade headers/);
  });
});

/** The SPDY upgrade by hand, for what the client helper does not expose. */
async function rawSpdy(url: string, protocol = 'v4.channel.k8s.io'): Promise<{ session: SpdySession; socket: net.Socket }> {
  const req = http.request(url, { method: 'POST', headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': protocol } });
  req.end();
  const [, socket, head] = (await once(req, 'upgrade')) as [http.IncomingMessage, net.Socket, Buffer];
  if (head.length > 0) socket.unshift(head);
  const session = new SpdySession(socket, { role: 'client' });
  session.on('error', () => {});
  return { session, socket };
}

describe('an idle connection', { timeout: 60_000 }, () => {
  it('is closed after the idle timeout, aborting its call', async () => {
    const idle = await StreamingServer.start({ address: '127.0.0.1:0', tls: null, domain, log, idleTimeoutMs: 200 });
    try {
      reset();
      const url = idle.exec({ containerId: 'c1', cmd: ['hang'], stdin: true, stdout: true, stderr: false, tty: false });
      const s = await openRemoteCommand(url, { transport: 'websocket', stdin: true, stdout: true, stderr: false, tty: false });
      await seen.aborted.promise; // nothing was sent either way
      await s.done;
    } finally {
      await idle.close();
    }
  });
});

describe('spdy streams a client does not finish opening', { timeout: 60_000 }, () => {
  it('a command whose streams are not all open within the creation timeout is dropped, never run', async () => {
    const quick = await StreamingServer.start({ address: '127.0.0.1:0', tls: null, domain, log, streamCreationTimeoutMs: 200 });
    try {
      reset();
      let ran = false;
      void seen.started.promise.then(() => (ran = true));
      const { session } = await rawSpdy(quick.exec({ containerId: 'c1', cmd: ['echo'], stdin: false, stdout: true, stderr: false, tty: false }));
      const error = await session.openStream({ streamtype: 'error' }, { fin: true }); // and no stdout stream
      error.on('error', () => {}); // the connection lost, as expected
      await once(session, 'close');
      assert.equal(ran, false);
    } finally {
      await quick.close();
    }
  });

  it('a port-forward pair left incomplete is answered on its error stream', async () => {
    const quick = await StreamingServer.start({ address: '127.0.0.1:0', tls: null, domain, log, streamCreationTimeoutMs: 200 });
    try {
      const { session } = await rawSpdy(quick.portForward({ sandboxId: 'p1', ports: [] }), 'portforward.k8s.io');
      const error = await session.openStream({ streamtype: 'error', port: '80', requestid: '7' }, { fin: true });
      let text = '';
      error.on('data', (b: Buffer) => (text += b.toString()));
      await once(error, 'end');
      assert.match(text, /^\(conn=\d+, request=7\) timed out waiting for streams$/);
      session.destroy();
    } finally {
      await quick.close();
    }
  });
});

describe('spdy port-forward as kubelet', { timeout: 60_000 }, () => {
  it("the pair's port is its data stream's; a failed connection resets the data stream after the error text", async () => {
    const { session } = await rawSpdy(server.portForward({ sandboxId: 'p1', ports: [] }), 'portforward.k8s.io');
    const error = await session.openStream({ streamtype: 'error', port: '1', requestid: '1' }, { fin: true });
    const data = await session.openStream({ streamtype: 'data', port: String(echoPort), requestid: '1' });
    data.write('ping');
    const [got] = (await once(data, 'data')) as [Buffer];
    assert.equal(got.toString(), 'ping');
    data.end();
    error.resume();
    await once(error, 'end');

    const badError = await session.openStream({ streamtype: 'error', port: String(echoPort), requestid: '2' }, { fin: true });
    const badData = await session.openStream({ streamtype: 'data', port: '1', requestid: '2' });
    let text = '';
    badError.on('data', (b: Buffer) => (text += b.toString()));
    const errorEnded = once(badError, 'end');
    const [err] = (await once(badData, 'error')) as [SpdyError];
    assert.equal(err.status, RstStatus.CANCEL);
    await errorEnded;
    assert.match(text, /^error forwarding port 1 to pod p1, uid : connect ECONNREFUSED/);
    session.destroy();
  });
});

describe('spdy port-forward streams a client never pairs', { timeout: 60_000 }, () => {
  it('are held up to a bound; past it a new pair is refused (REFUSED_STREAM), a complete pair still forwards', async () => {
    const { session } = await rawSpdy(server.portForward({ sandboxId: 'p1', ports: [] }), 'portforward.k8s.io');
    const waiting: SpdyStream[] = [];
    for (let i = 0; i < maxUnpairedPortForwardStreams; i++) {
      const s = await session.openStream({ streamtype: 'error', port: String(echoPort), requestid: `lonely-${i}` }, { fin: true });
      s.on('error', () => {});
      waiting.push(s);
    }
    const refused = await session.openStream({ streamtype: 'error', port: String(echoPort), requestid: 'one-too-many' });
    const [err] = (await once(refused, 'error')) as [SpdyError];
    assert.equal(err.status, RstStatus.REFUSED_STREAM);
    // a pair whose first stream waits is still completed
    const data = await session.openStream({ streamtype: 'data', port: String(echoPort), requestid: 'lonely-0' });
    data.write('ping');
    const [got] = (await once(data, 'data')) as [Buffer];
    assert.equal(got.toString(), 'ping');
    session.destroy();
  });
});

/** Resolves once `cond` holds, checking on each turn of the event loop (the file's timeout bounds it). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

describe('streaming connections', { timeout: 60_000 }, () => {
  it('have TCP keepalive on, at 15 s as kubelet', async () => {
    for (const transport of transports) {
      reset();
      const s = await openRemoteCommand(execUrl(['hang'], { stdin: true }), { transport, stdin: true, stdout: true, stderr: false, tty: false });
      await seen.started.promise;
      const port = new URL(server.baseUrl).port;
      // The server's side of the connection: once nothing is in flight, its timer is the
      // keepalive's (a retransmit timer shows while data is unacknowledged).
      let out = '';
      while (!/timer:\(keepalive,/.test(out)) {
        await new Promise((r) => setImmediate(r));
        out = execFileSync('ss', ['-tnoH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
      }
      const m = /timer:\(keepalive,(?:(\d+)min)?(?:(\d+(?:\.\d+)?)(ms|sec))?/.exec(out);
      assert.ok(m, out);
      assert.ok(Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0) / (m[3] === 'ms' ? 1000 : 1) <= 15, `${transport}: ${out}`);
      s.close();
      await seen.aborted.promise;
    }
  });
});

describe('port-forward connections across sessions', { timeout: 60_000 }, () => {
  it('are bounded: past the bound a connection is refused on its error stream, and one that closes makes room', async () => {
    const bounded = await StreamingServer.start({ address: '127.0.0.1:0', tls: null, domain, log, maxPortForwardConnections: 2 });
    try {
      const a = await openPortForward(bounded.portForward({ sandboxId: 'p1', ports: [] }), { transport: 'spdy' });
      const b = await openPortForward(bounded.portForward({ sandboxId: 'p1', ports: [echoPort] }), { transport: 'websocket' });
      const echoOnce = async (d: NodeJS.ReadWriteStream) => {
        d.write('ping');
        const [got] = (await once(d, 'data')) as [Buffer];
        assert.equal(got.toString(), 'ping');
      };
      const first = await a.connect(echoPort);
      await echoOnce(first);
      await echoOnce(await b.connect(echoPort));
      assert.equal(bounded.portForwardConnectionCount, 2);
      const refused = await a.connect(echoPort);
      const [err] = (await once(refused, 'error')) as [Error];
      assert.match(err.message, /too many port-forward connections open \(2\)/);
      b.close();
      await until(() => bounded.portForwardConnectionCount === 1);
      await echoOnce(await a.connect(echoPort));
      a.close();
      await until(() => bounded.portForwardConnectionCount === 0);
    } finally {
      await bounded.close();
    }
  });
});

describe('a client that half-closes its connection and reads nothing more', { timeout: 60_000 }, () => {
  it('spdy: the call is aborted at its end of input, though the server cannot finish writing', async () => {
    reset();
    const { session, socket } = await rawSpdy(execUrl(['floodhang']));
    const error = await session.openStream({ streamtype: 'error' }, { fin: true });
    const stdout = await session.openStream({ streamtype: 'stdout' }, { fin: true });
    for (const s of [error, stdout]) s.on('error', () => {});
    socket.pause(); // reads nothing more: the server's writes get stuck
    await seen.blocked.promise;
    await until(() => server.bufferedBytes > 0); // the kernel takes no more
    socket.end(); // shutdown(SHUT_WR)
    await seen.aborted.promise;
    socket.destroy();
  });

  it('websocket: the call is aborted at its end of input, though the server cannot finish writing', async () => {
    reset();
    const ws = new WebSocket(execUrl(['floodhang']).replace(/^http/, 'ws'), ['v5.channel.k8s.io']);
    await once(ws, 'open');
    ws.pause();
    await seen.blocked.promise;
    await until(() => server.bufferedBytes > 0); // the kernel takes no more
    (ws as unknown as { _socket: net.Socket })._socket.end(); // shutdown(SHUT_WR)
    await seen.aborted.promise;
    ws.terminate();
  });
});

describe('streaming server over https', { timeout: 60_000 }, () => {
  let dir: string;
  let tlsServer: StreamingServer;
  let cert: Buffer;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-streaming-tls-'));
    const [certFile, keyFile] = [path.join(dir, 'tls.crt'), path.join(dir, 'tls.key')];
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { stdio: 'pipe' },
    );
    const tls = await readStreamingTls({ tlsCertFile: certFile, tlsKeyFile: keyFile });
    assert.ok(tls);
    cert = tls.cert;
    tlsServer = await StreamingServer.start({ address: '127.0.0.1:0', tls, domain, log });
  });

  after(async () => {
    await tlsServer?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves https URLs; a client that trusts the certificate execs', async () => {
    const url = tlsServer.exec({ containerId: 'c1', cmd: ['echo', 'tls'], stdin: false, stdout: true, stderr: false, tty: false });
    assert.match(url, /^https:\/\//);
    const r = await runRemoteCommand(url, { transport: 'websocket', stdin: false, stdout: true, stderr: false, tty: false, tls: { ca: cert } });
    assert.equal(r.stdout.toString(), 'tls\n');
  });

  it('names the key and file it cannot read', async () => {
    await assert.rejects(readStreamingTls({ tlsCertFile: path.join(dir, 'none.crt'), tlsKeyFile: '/k' }), /streaming\.tls_cert_file .*none\.crt: ENOENT/);
    assert.equal(await readStreamingTls({ tlsCertFile: null, tlsKeyFile: null }), null);
  });
});
