/**
 * How CNI plugins are exec'd (the addon's posix_spawn, src/native/host-spawn.ts): a plugin
 * that hangs is killed at the timeout with what it started and leaves no process, zombie or
 * fd; 4 MiB of output are read whole and more fail cleanly; a plugin that never reads its
 * config does not hang the call; the program gets exactly its env, fds 0-2 and default
 * signals. The plugins are shell scripts the test writes to a temp dir.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseCniConfig } from '../../src/network/cni-config';
import { CniPluginRunner, type CniPluginError, type CniRequest } from '../../src/network/cni-plugin';
import { runHostProgram } from '../../src/native/host-spawn';
import { makeTempDir } from '../helpers/daemon';

const limit = 4 * 1024 * 1024;

/** A plugin dir with one script plugin `type`, and a runner over it. */
function fakePlugin(dir: string, type: string, script: string, timeoutMs = 30_000): CniPluginRunner {
  const plugins = path.join(dir, 'plugins');
  fs.mkdirSync(plugins, { recursive: true });
  fs.writeFileSync(path.join(plugins, type), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  return new CniPluginRunner({ pluginDirs: [plugins], cacheDir: path.join(dir, 'cache'), timeoutMs });
}

function request(): CniRequest {
  return { containerId: `nodecri-test-${randomBytes(8).toString('hex')}`, netnsPath: '/proc/self/ns/net', ifName: 'eth0', args: {}, capabilities: {} };
}

const network = (type: string, extra: Record<string, unknown> = {}) =>
  parseCniConfig('x.conflist', JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type, ...extra }] }));

/** Processes whose environment names `containerId` (the plugin and what it started). */
function processesOf(containerId: string): number[] {
  const needle = Buffer.from(`CNI_CONTAINERID=${containerId}\0`);
  const found: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/environ`).includes(needle)) found.push(Number(p));
    } catch {
      // gone
    }
  }
  return found;
}

/** Our children that are zombies (exited, not reaped). */
function zombieChildren(): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (f[0] === 'Z' && Number(f[1]) === process.pid) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}

const fdCount = () => fs.readdirSync('/proc/self/fd').length;

test('a plugin that hangs is killed at the timeout, with what it started, and leaves nothing', async () => {
  const dir = makeTempDir();
  try {
    // ADD hangs in a child of its own (which the kill must reach through the group); DEL, run
    // for the failed ADD, returns at once.
    const runner = fakePlugin(dir, 'hang', 'cat >/dev/null\nif [ "$CNI_COMMAND" = ADD ]; then sleep 600 & wait; fi\nexit 0', 500);
    const req = request();
    // The first call loads the addon and starts what it keeps for the process: not counted.
    await runHostProgram({ path: '/bin/true', argv: ['true'], env: [], stdin: Buffer.alloc(0), timeoutMs: 0, maxOutputBytes: 0 });
    const fds = fdCount();
    await assert.rejects(runner.add(network('hang'), req), (e: CniPluginError) => {
      assert.match(e.message, /CNI plugin hang ADD failed: timed out after 500 ms/);
      return true;
    });
    // SIGKILL is sent to the group before the ADD settles; a killed process may take a moment
    // to be gone, so look until it is (no timing is asserted).
    for (let i = 0; processesOf(req.containerId).length > 0 && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(processesOf(req.containerId), []);
    assert.deepEqual(zombieChildren(), []);
    assert.equal(fdCount(), fds);
    assert.equal(fs.existsSync(path.join(dir, 'cache')) ? fs.readdirSync(path.join(dir, 'cache')).length : 0, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A script that prints a JSON result of exactly `size` bytes (a padded string field). */
function resultOfSize(size: number): string {
  const head = '{"cniVersion":"1.0.0","ips":[],"pad":"';
  const tail = '"}';
  return `cat >/dev/null\nprintf '%s' '${head}'\nhead -c ${size - head.length - tail.length} /dev/zero | tr '\\0' x\nprintf '%s' '${tail}'`;
}

test('a plugin that writes 4 MiB of output is read whole', async () => {
  const dir = makeTempDir();
  try {
    const runner = fakePlugin(dir, 'big', resultOfSize(limit));
    const result = await runner.add(network('big'), request());
    const pad = result.raw.pad as string;
    assert.equal(JSON.stringify(result.raw).length, limit);
    assert.ok(/^x+$/.test(pad));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a plugin that writes more than 4 MiB fails, naming the bound, and leaves nothing', async () => {
  const dir = makeTempDir();
  try {
    const runner = fakePlugin(dir, 'huge', resultOfSize(limit + 1));
    const req = request();
    const fds = fdCount();
    await assert.rejects(runner.add(network('huge'), req), /CNI plugin huge ADD failed: wrote more than 4194304 bytes to stdout/);
    for (let i = 0; processesOf(req.containerId).length > 0 && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(processesOf(req.containerId), []);
    assert.deepEqual(zombieChildren(), []);
    assert.equal(fdCount(), fds);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a plugin that never reads a large config does not hang the call', async () => {
  const dir = makeTempDir();
  try {
    const runner = fakePlugin(dir, 'deaf', `echo '{"cniVersion":"1.0.0","ips":[{"address":"10.1.2.3/24"}]}'`);
    // 2 MiB of config: far more than a pipe holds, so the write is left half-done when the
    // plugin exits without reading it.
    const result = await runner.add(network('deaf', { blob: 'y'.repeat(2 * 1024 * 1024) }), request());
    assert.equal(result.ips[0]?.address, '10.1.2.3/24');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a host program gets exactly its env, fds 0-2 only and default signals; its exit code and stdin come through', async () => {
  const script = 'cat; env >&2; ls /proc/self/fd >&2; grep -E "^Sig(Blk|Ign)" /proc/self/status >&2; exit 7';
  const r = await runHostProgram({
    path: '/bin/sh',
    argv: ['sh', '-c', script],
    env: ['PATH=/usr/bin:/bin', 'A=b c'],
    stdin: Buffer.from('in\n'),
    timeoutMs: 0,
    maxOutputBytes: limit,
  });
  assert.equal(r.exitCode, 7);
  assert.equal(r.signal, null);
  assert.equal(r.timedOut, false);
  assert.equal(r.stdout.toString(), 'in\n');
  const err = r.stderr.toString().split('\n');
  const env = err.filter((l) => /^[A-Z_]+=/.test(l) && !l.startsWith('Sig'));
  // sh adds PWD (and nothing else from the daemon's environment may appear)
  assert.deepEqual(env.filter((l) => !l.startsWith('PWD=')).sort(), ['A=b c', 'PATH=/usr/bin:/bin']);
  // 0-2, and the fd ls itself opens for /proc/self/fd
  const fds = err.filter((l) => /^\d+$/.test(l)).map(Number);
  assert.deepEqual(
    fds.filter((n) => n <= 2),
    [0, 1, 2],
  );
  assert.ok(fds.length <= 4, `fds in the child: ${fds.join(' ')}`);
  assert.ok(err.includes('SigBlk:\t0000000000000000'), err.join('\n'));
  // Nothing ignored but glibc's two reserved signals (32 and 33): glibc's posix_spawn leaves
  // them ignored in every program it starts (its vfork child must not run the parent's
  // handlers), and a glibc program re-arms them when it starts.
  const ignored = BigInt(`0x${err.find((l) => l.startsWith('SigIgn:'))!.split('\t')[1]}`);
  assert.equal(ignored & ~0x180000000n, 0n, err.join('\n'));
});

test("a program that cannot be exec'd is an error naming its path", async () => {
  await assert.rejects(
    runHostProgram({ path: '/nonexistent/plugin', argv: ['x'], env: [], stdin: Buffer.alloc(0), timeoutMs: 0, maxOutputBytes: 10 }),
    (e: NodeJS.ErrnoException) => {
      assert.equal(e.code, 'ENOENT');
      assert.equal(e.path, '/nonexistent/plugin');
      return true;
    },
  );
});
