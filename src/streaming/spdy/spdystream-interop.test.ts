/**
 * Our sessions against moby/spdystream itself, the SPDY library of kubectl, crictl, critest and
 * kubelet: testdata/spdystream-peer/main.go built with Go against a spdystream source tree.
 * It runs only when both are at hand (nothing is fetched): NODECRI_SPDYSTREAM_DIR names the
 * tree (e.g. `git archive` of github.com/moby/spdystream), and `go` is on PATH, in NODECRI_GO
 * or in /usr/lib/go-<version>/bin. Otherwise it is skipped and says why.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, promises as fs, readdirSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { RstStatus, type SpdyError, SpdySession, type SpdyStream } from './session';

function findGo(): string | null {
  if (process.env.NODECRI_GO) return process.env.NODECRI_GO;
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(path.join(dir, 'go'))) return path.join(dir, 'go');
  const lib = '/usr/lib';
  for (const d of existsSync(lib) ? readdirSync(lib).filter((n) => n.startsWith('go-')) : []) {
    if (existsSync(path.join(lib, d, 'bin', 'go'))) return path.join(lib, d, 'bin', 'go');
  }
  return null;
}

const go = findGo();
const spdystreamDir = process.env.NODECRI_SPDYSTREAM_DIR ?? '';
const skip = !go ? 'no Go toolchain' : !spdystreamDir || !existsSync(path.join(spdystreamDir, 'connection.go')) ? 'NODECRI_SPDYSTREAM_DIR names no spdystream tree' : false;

function readAll(s: SpdyStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
    s.resume();
  });
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

/** The peer's stdout, line by line, and its exit. */
function run(bin: string, args: string[]): { child: ChildProcess; lines: string[]; exited: Promise<number | null> } {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let rest = '';
  child.stdout!.on('data', (c: Buffer) => {
    const parts = (rest + c.toString()).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, lines, exited };
}

describe('SPDY sessions against moby/spdystream', { timeout: 240_000, skip }, () => {
  let work = '';
  let bin = '';
  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'nodecri-spdystream-'));
    const src = path.join(__dirname, '..', '..', '..', '..', 'src', 'streaming', 'spdy', 'testdata', 'spdystream-peer', 'main.go');
    await fs.copyFile(src, path.join(work, 'main.go'));
    await fs.writeFile(
      path.join(work, 'go.mod'),
      `module spdystreampeer\n\ngo 1.19\n\nrequire github.com/moby/spdystream v0.0.0\n\nreplace github.com/moby/spdystream => ${path.resolve(spdystreamDir)}\n`,
    );
    bin = path.join(work, 'peer');
    const env = { ...process.env, GOFLAGS: '-mod=mod', GOPROXY: 'off', GOSUMDB: 'off', GOCACHE: path.join(work, 'cache'), GOPATH: path.join(work, 'gopath') };
    await promisify(execFile)(go!, ['build', '-o', bin, '.'], { cwd: work, env });
  });
  after(async () => {
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('spdystream writes the fixtures session.test.ts holds', async () => {
    const { lines, exited } = run(bin, ['golden']);
    assert.equal(await exited, 0);
    assert.ok(lines.includes('syn_stream_1_error 80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff'), lines.join('\n'));
  });

  it('a spdystream client (as kubectl) against our server: ping, 100 streams at once up to 10 MiB echoed, a reset, GOAWAY', async () => {
    const listener = net.createServer();
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const resets: number[] = [];
    const closed = new Promise<void>((resolve) =>
      listener.once('connection', (socket: net.Socket) => {
        const server = new SpdySession(socket, { role: 'server' });
        server.on('stream', (s: SpdyStream) => {
          s.on('error', (e: SpdyError) => resets.push(e.status ?? -1));
          if (s.headers.streamtype === 'refuse') s.reset(RstStatus.REFUSED_STREAM);
          else if (s.headers.streamtype === 'reset-me') s.resume();
          else s.pipe(s);
        });
        server.on('close', resolve);
      }),
    );
    const { port } = listener.address() as net.AddressInfo;
    const peer = run(bin, ['client', `127.0.0.1:${port}`]);
    assert.equal(await peer.exited, 0, peer.lines.join('\n'));
    assert.deepEqual(peer.lines.slice(0, 2), ['ping ok', 'echo ok']);
    assert.equal(peer.lines.at(-1), 'close ok');
    await closed;
    assert.deepEqual(resets, [RstStatus.CANCEL], 'the stream spdystream reset');
    listener.close();
  });

  it('our client against a spdystream server (as kubelet): ping, streams up to 32 MiB echoed, a paused reader stays bounded', async () => {
    const peer = run(bin, ['server', '127.0.0.1:0']);
    try {
      await until(() => peer.lines.some((l) => l.startsWith('listening ')));
      const [host, port] = peer.lines
        .find((l) => l.startsWith('listening '))!
        .split(' ')[1]
        .split(':');
      const socket = net.connect(Number(port), host);
      await once(socket, 'connect');
      const client = new SpdySession(socket, { role: 'client' });
      await client.ping();
      await Promise.all(
        [0, 1, 1000, 100_000, 10 << 20, 32 << 20].map(async (size, i) => {
          const s = await client.openStream({ streamtype: 'stdin', requestid: String(i) });
          const data = randomBytes(size);
          s.end(data);
          assert.ok((await readAll(s)).equals(data), `stream of ${size} bytes`);
        }),
      );
      const slow = await client.openStream({ streamtype: 'slow' });
      slow.pause();
      const big = randomBytes(16 << 20);
      slow.end(big);
      await until(() => client.inboundPaused);
      assert.ok(slow.readableLength <= 64 * 1024 + 64 * 1024, `stream buffer ${slow.readableLength}`);
      assert.ok(client.inboundBuffered <= 256 * 1024, `unparsed ${client.inboundBuffered}`);
      assert.ok((await readAll(slow)).equals(big));
      client.close();
      await once(client, 'close');
    } finally {
      peer.child.kill();
      await peer.exited;
    }
  });
});
