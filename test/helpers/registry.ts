/**
 * Registries for image tests: Debian's docker-registry (CNCF distribution 2.8) on
 * 127.0.0.1 on a free port with its storage in a temp dir, optionally behind htpasswd basic
 * auth; and a small HTTP proxy in front of one that counts requests and can corrupt, stall
 * or slow a response, for the failure tests. Everything is stopped by `stop()`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface TestRegistry {
  /** "127.0.0.1:PORT" */
  host: string;
  dir: string;
  auth: { username: string; password: string } | null;
  log: () => string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitUp(host: string, proc: ChildProcess, log: () => string): Promise<void> {
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    if (proc.exitCode !== null) throw new Error(`docker-registry exited (${proc.exitCode}):\n${log()}`);
    try {
      const res = await fetch(`http://${host}/v2/`);
      if (res.status === 200 || res.status === 401) return;
    } catch {
      // not yet listening
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry not up on ${host} after 10 s:\n${log()}`);
}

export async function startRegistry(opts: { auth?: { username: string; password: string } } = {}): Promise<TestRegistry> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let authYaml = '';
  if (opts.auth) {
    // The registry accepts only bcrypt hashes; htpasswd -B makes one.
    const r = spawnSync('htpasswd', ['-Bbn', opts.auth.username, opts.auth.password], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`htpasswd failed (apt-get install apache2-utils): ${r.stderr}`);
    fs.writeFileSync(path.join(dir, 'htpasswd'), r.stdout);
    authYaml = `auth:\n  htpasswd:\n    realm: nodecri-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
  }
  fs.writeFileSync(
    path.join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: ${host}\n${authYaml}`,
  );
  const proc = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  proc.stdout!.on('data', (c: Buffer) => (text += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUp(host, proc, () => text);
  } catch (e) {
    await stop();
    throw e;
  }
  return { host, dir, auth: opts.auth ?? null, log: () => text, stop };
}

export interface ProxyRequest {
  method: string;
  path: string;
}

export interface ProxyHooks {
  /**
   * Called for each response before it is relayed: return a Buffer to send instead of the
   * registry's body, 'stall' to send the first half of the body and then nothing, or null to
   * relay it as is.
   */
  rewrite?: (req: ProxyRequest) => Buffer | 'stall' | null;
}

export interface TestProxy {
  host: string;
  requests: ProxyRequest[];
  /** GETs of `/v2/.../blobs/<digest>` for this digest */
  blobGets(digest: string): number;
  /** resolves when a stalled response has sent its first half */
  stalled: Promise<void>;
  hooks: ProxyHooks;
  stop(): Promise<void>;
}

/** A plain-http proxy in front of `target` (host:port). */
export async function startProxy(target: string, hooks: ProxyHooks = {}): Promise<TestProxy> {
  const requests: ProxyRequest[] = [];
  const sockets = new Set<net.Socket>();
  let onStall: () => void = () => undefined;
  const stalled = new Promise<void>((r) => (onStall = r));
  const server = http.createServer((req, res) => {
    const r: ProxyRequest = { method: req.method ?? 'GET', path: req.url ?? '/' };
    requests.push(r);
    const up = http.request({ host: target.split(':')[0], port: Number(target.split(':')[1]), method: req.method, path: req.url, headers: req.headers }, (ur) => {
      const rewrite = ur.statusCode === 200 ? (proxy.hooks.rewrite?.(r) ?? null) : null;
      if (rewrite === null) {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      ur.on('data', (c: Buffer) => chunks.push(c));
      ur.on('end', () => {
        const body = Buffer.concat(chunks);
        const headers = { ...ur.headers };
        if (rewrite === 'stall') {
          res.writeHead(200, headers);
          res.write(body.subarray(0, body.length >> 1), () => onStall());
          return; // never ends: the client is killed or times out
        }
        headers['content-length'] = String(rewrite.length);
        res.writeHead(200, headers);
        res.end(rewrite);
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const proxy: TestProxy = {
    host,
    requests,
    hooks,
    stalled,
    blobGets: (digest) => requests.filter((q) => q.method === 'GET' && q.path.endsWith(`/blobs/${digest}`)).length,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
