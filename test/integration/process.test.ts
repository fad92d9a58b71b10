/**
 * Container processes for real (root, real kernel): a busybox rootfs per test, new
 * namespaces, and the leak check around every test (mounts under the temp dir, files,
 * child processes). Every process a test makes is tracked and killed/released in
 * `finally`, so a failing assertion leaves nothing behind either.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tty from 'node:tty';
import { describe, it } from 'node:test';
import { SyscallError } from '../../src/native/errors';
import { dumpable } from '../../src/native/probe';
import {
  ExecSpec,
  ProcessHandle,
  ProcessSpec,
  adoptProcess,
  baseProcessSpec,
  createProcess,
  dupFd,
  execProcess,
  handoffProcess,
  releaseProcess,
  resizeTerminal,
  signalProcess,
  startProcess,
  terminalWriter,
} from '../../src/native/process';
import { capabilityMask } from '../../src/native/process-spec';
import { DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../../src/oci';
import { controllerMount } from '../helpers/cgroups';
import { defaultDev, defaultMounts } from '../helpers/process-defaults';
import { withoutLeaks } from '../helpers/leaks';
import { buildRootfs, makeTempDir } from '../helpers/rootfs';

interface Ctx {
  dir: string;
  rootfs: string;
  /** registers a handle for cleanup */
  track(h: ProcessHandle): ProcessHandle;
}

/**
 * The fds this process holds, less /proc's own and the addon's sealed copy of nodecri-init:
 * that memfd is made at the first spawn and kept for the life of the process (the addon
 * loads on first use, so the first test to spawn opens it).
 */
function openFds(): string[] {
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      return !target.startsWith('/proc/') && !target.startsWith('/memfd:nodecri-init');
    } catch {
      return false; // the fd used by readdir itself
    }
  });
}

async function inContainerTest(body: (ctx: Ctx) => Promise<void>): Promise<void> {
  const dir = makeTempDir();
  const fdsBefore = openFds();
  try {
    await withoutLeaks({ mountPrefixes: [dir] }, async () => {
      const handles: ProcessHandle[] = [];
      try {
        await body({ dir, rootfs: buildRootfs(dir), track: (h) => (handles.push(h), h) });
      } finally {
        for (const h of handles) {
          try {
            signalProcess(h, 'SIGKILL');
          } catch {
            // already gone
          }
          await releaseProcess(h).catch(() => undefined);
        }
        // A released process that still ran is reaped by its watcher later: the leak check
        // counts this process's children only once each of them has been reaped.
        await Promise.all(handles.map((h) => h.exited));
      }
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // Every pidfd, sync socket and stdio end the test was given or the addon opened is closed.
  await new Promise((r) => setImmediate(r));
  const leaked = openFds().filter((fd) => !fdsBefore.includes(fd));
  assert.deepEqual(
    leaked.map((fd) => `${fd} -> ${fs.readlinkSync(`/proc/self/fd/${fd}`)}`),
    [],
  );
}

function baseSpec(rootfs: string, args: string[], over: Partial<ProcessSpec> = {}): ProcessSpec {
  return {
    ...baseProcessSpec(rootfs, args),
    namespaces: (['pid', 'mount', 'ipc', 'uts', 'network'] as const).map((type) => ({ type, path: null })),
    mounts: defaultMounts(),
    ...defaultDev(),
    hostname: 'nodecri-test',
    maskedPaths: [...DEFAULT_MASKED_PATHS],
    readonlyPaths: [...DEFAULT_READONLY_PATHS],
    env: ['PATH=/bin', 'HOME=/root'],
    capabilities: {
      bounding: [...DEFAULT_CAPABILITIES],
      effective: [...DEFAULT_CAPABILITIES],
      permitted: [...DEFAULT_CAPABILITIES],
      inheritable: [],
      ambient: [],
    },
    noNewPrivileges: true,
    rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 1024 }],
    stdout: 'pipe',
    stderr: 'pipe',
    ...over,
  };
}

function collect(fd: number | null): Promise<string> {
  if (fd === null) return Promise.resolve('');
  const s = new net.Socket({ fd, readable: true, writable: false });
  let out = '';
  s.setEncoding('utf8');
  s.on('data', (d: string) => (out += d));
  return new Promise((resolve, reject) => {
    s.on('error', reject);
    s.on('close', () => resolve(out));
  });
}

interface Ran {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal: string | null;
  handle: ProcessHandle;
}

async function run(ctx: Ctx, spec: ProcessSpec): Promise<Ran> {
  const h = ctx.track(await createProcess(spec));
  const out = collect(h.stdout);
  const err = collect(h.stderr);
  await startProcess(h);
  const st = await h.exited;
  return { stdout: await out, stderr: await err, exitCode: st.exitCode, signal: st.signal, handle: h };
}

function statusField(status: string, name: string): string {
  const m = new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(status);
  assert.ok(m, `no ${name} in\n${status}`);
  return m[1];
}

function execSpec(args: string[]): ExecSpec {
  return {
    args,
    env: ['PATH=/bin'],
    cwd: '/',
    uid: 0,
    gid: 0,
    additionalGids: [],
    umask: null,
    capabilities: null,
    noNewPrivileges: true,
    rlimits: [],
    oomScoreAdj: null,
    seccomp: null,
    cgroupProcs: [],
    terminal: false,
    stdin: 'null',
    stdout: 'pipe',
    stderr: 'pipe',
  };
}

const defaultCapHex = capabilityMask(DEFAULT_CAPABILITIES).toString(16).padStart(16, '0');

describe('container process', () => {
  it('runs as pid 1 with its hostname, the default caps and no_new_privs', () =>
    inContainerTest(async (ctx) => {
      const r = await run(
        ctx,
        baseSpec(ctx.rootfs, ['sh', '-c', 'echo $$; hostname; ulimit -n; cat /proc/sys/net/ipv4/ip_forward; cat /proc/self/status'], {
          sysctls: { 'net.ipv4.ip_forward': '1' },
        }),
      );
      assert.equal(r.exitCode, 0, r.stderr);
      const lines = r.stdout.split('\n');
      assert.equal(lines[0], '1');
      assert.equal(lines[1], 'nodecri-test');
      assert.equal(lines[2], '1024');
      assert.equal(lines[3], '1');
      // Node ignores SIGPIPE and we block every signal around the clone: none of it is
      // inherited by the workload (read by cat itself: busybox sh ignores SIGQUIT).
      const direct = await run(ctx, baseSpec(ctx.rootfs, ['cat', '/proc/self/status']));
      assert.equal(statusField(direct.stdout, 'SigIgn'), '0000000000000000');
      assert.equal(statusField(direct.stdout, 'SigBlk'), '0000000000000000');
      assert.equal(statusField(r.stdout, 'CapEff'), defaultCapHex);
      assert.equal(statusField(r.stdout, 'CapBnd'), defaultCapHex);
      assert.equal(statusField(r.stdout, 'NoNewPrivs'), '1');
    }));

  it('runs a non-root user as that user with no effective caps', () =>
    inContainerTest(async (ctx) => {
      const r = await run(ctx, baseSpec(ctx.rootfs, ['sh', '-c', 'id -u; id -g; cat /proc/self/status'], { uid: 1000, gid: 1000, cwd: '/home/user' }));
      assert.equal(r.exitCode, 0, r.stderr);
      const lines = r.stdout.split('\n');
      assert.equal(lines[0], '1000');
      assert.equal(lines[1], '1000');
      assert.equal(statusField(r.stdout, 'CapEff'), '0000000000000000');
    }));

  it('refuses writes to read-only paths and a read-only root', () =>
    inContainerTest(async (ctx) => {
      fs.mkdirSync(path.join(ctx.rootfs, 'ro'));
      const r = await run(ctx, baseSpec(ctx.rootfs, ['sh', '-c', 'touch /ro/x || exit 10; exit 0'], { readonlyPaths: ['/ro'] }));
      assert.equal(r.exitCode, 10);
      assert.match(r.stderr, /Read-only file system/);
      const r2 = await run(ctx, baseSpec(ctx.rootfs, ['sh', '-c', 'touch /x || exit 11; touch /tmp/y || exit 12; exit 0'], { rootReadonly: true }));
      assert.equal(r2.exitCode, 11);
      assert.ok(!fs.existsSync(path.join(ctx.rootfs, 'x')));
    }));

  it('masks files and directories', () =>
    inContainerTest(async (ctx) => {
      fs.writeFileSync(path.join(ctx.rootfs, 'secret'), 'top secret\n');
      fs.mkdirSync(path.join(ctx.rootfs, 'secrets'));
      fs.writeFileSync(path.join(ctx.rootfs, 'secrets', 'key'), 'k');
      const r = await run(
        ctx,
        baseSpec(ctx.rootfs, ['sh', '-c', 'cat /secret; ls /secrets; cat /proc/kcore | wc -c'], {
          maskedPaths: [...DEFAULT_MASKED_PATHS, '/secret', '/secrets'],
        }),
      );
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout.trim(), '0');
    }));

  it('applies a seccomp filter compiled in the parent', () =>
    inContainerTest(async (ctx) => {
      const seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        defaultErrnoRet: null,
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
        flags: [],
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [] }],
      };
      const r = await run(ctx, baseSpec(ctx.rootfs, ['sh', '-c', 'mkdir /tmp/d || exit 9'], { seccomp }));
      assert.equal(r.exitCode, 9);
      assert.match(r.stderr, /Operation not permitted/);
      assert.ok(!fs.existsSync(path.join(ctx.rootfs, 'tmp', 'd')));
    }));

  it('does not run before startProcess', () =>
    inContainerTest(async (ctx) => {
      const marker = path.join(ctx.rootfs, 'tmp', 'started');
      const h = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['sh', '-c', 'echo yes > /tmp/started; echo out'])));
      const out = collect(h.stdout);
      const err = collect(h.stderr);
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(!fs.existsSync(marker), 'ran before start');
      await startProcess(h);
      assert.deepEqual(await h.exited, { exitCode: 0, signal: null });
      assert.equal(await out, 'out\n');
      await err;
      assert.equal(fs.readFileSync(marker, 'utf8'), 'yes\n');
    }));

  it('releases a created process without running it', () =>
    inContainerTest(async (ctx) => {
      const h = await createProcess(baseSpec(ctx.rootfs, ['sh', '-c', 'echo yes > /tmp/started'], { stdout: 'null', stderr: 'null' }));
      await releaseProcess(h);
      assert.ok(!fs.existsSync(path.join(ctx.rootfs, 'tmp', 'started')));
    }));

  it('reports exit codes and signals exactly', () =>
    inContainerTest(async (ctx) => {
      assert.equal((await run(ctx, baseSpec(ctx.rootfs, ['true']))).exitCode, 0);
      const three = await run(ctx, baseSpec(ctx.rootfs, ['sh', '-c', 'exit 3']));
      assert.deepEqual([three.exitCode, three.signal], [3, null]);
      const h = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['sleep', '30'], { stdout: 'null', stderr: 'null' })));
      await startProcess(h);
      // Its own session and process group, not the daemon's.
      const stat = fs.readFileSync(`/proc/${h.pid}/stat`, 'utf8');
      const [pgrp, session] = stat
        .slice(stat.lastIndexOf(')') + 2)
        .split(' ')
        .slice(2, 4)
        .map(Number);
      assert.deepEqual([pgrp, session], [h.pid, h.pid]);
      signalProcess(h, 'SIGKILL');
      assert.deepEqual(await h.exited, { exitCode: null, signal: 'SIGKILL' });
    }));

  it('runs a program that appeared between the create and the start (looked up again at start, as runc does)', () =>
    inContainerTest(async (ctx) => {
      const h = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['/bin/later', 'from-later'])));
      const out = collect(h.stdout);
      const err = collect(h.stderr);
      fs.writeFileSync(path.join(ctx.rootfs, 'bin', 'later'), '#!/bin/sh\necho "$1"\n', { mode: 0o755 });
      await startProcess(h);
      assert.equal((await h.exited).exitCode, 0, await err);
      assert.equal(await out, 'from-later\n');
    }));

  it('fails the start on a missing executable, naming it, and leaves nothing behind', () =>
    inContainerTest(async (ctx) => {
      for (const exe of ['nosuchcmd', '/bin/nosuchcmd']) {
        // The setup succeeds (a missing program is a start error, as with runc under
        // containerd); the start fails with the lookup's error.
        const h = ctx.track(await createProcess(baseSpec(ctx.rootfs, [exe])));
        await assert.rejects(startProcess(h), (e: unknown) => {
          assert.ok(e instanceof SyscallError, String(e));
          assert.equal(e.code, 'ENOENT');
          assert.equal(e.path, exe);
          assert.match(e.message, new RegExp(exe));
          return true;
        });
        assert.equal((await h.exited).exitCode, 127);
        // Its pipes are the caller's, as after any start.
        for (const fd of [h.stdout, h.stderr]) if (fd !== null) fs.closeSync(fd);
      }
      await assert.rejects(createProcess(baseSpec(ctx.rootfs, ['true'], { cwd: '/nonexistent' })), (e: unknown) => {
        assert.ok(e instanceof SyscallError);
        assert.equal(e.code, 'ENOENT');
        assert.equal(e.path, '/nonexistent');
        return true;
      });
      // An exec of a missing program fails as a whole (its start comes with it), its pipes closed.
      const init = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['sleep', '30'], { stdout: 'null', stderr: 'null' })));
      await startProcess(init);
      await assert.rejects(execProcess(init, execSpec(['nosuchcmd'])), (e: unknown) => e instanceof SyscallError && e.code === 'ENOENT' && e.path === 'nosuchcmd');
      signalProcess(init, 'SIGKILL');
      assert.equal((await init.exited).signal, 'SIGKILL');
    }));

  it('execs into a running container: its pid namespace, hostname and exit code', () =>
    inContainerTest(async (ctx) => {
      const init = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['sleep', '30'], { stdout: 'null', stderr: 'null', hostname: 'exec-target' })));
      await startProcess(init);
      const exec = execSpec(['sh', '-c', 'ps -o pid,args; hostname; echo $$; exit 7']);
      const e = ctx.track(await execProcess(init, exec));
      const [out, err, st] = await Promise.all([collect(e.stdout), collect(e.stderr), e.exited]);
      assert.equal(st.exitCode, 7, err);
      assert.match(out, /^\s*1\s+sleep 30$/m);
      assert.match(out, /^exec-target$/m);
      const pidLine = out.trim().split('\n').pop()!;
      assert.ok(Number(pidLine) > 1, `exec'd pid in the container's namespace: ${pidLine}`);
      signalProcess(init, 'SIGKILL');
      assert.equal((await init.exited).signal, 'SIGKILL');
    }));

  it('execs into a running container with a terminal of its own, which takes input and a size', () =>
    inContainerTest(async (ctx) => {
      const init = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['sleep', '30'], { stdout: 'null', stderr: 'null' })));
      await startProcess(init);
      const e = ctx.track(await execProcess(init, { ...execSpec(['sh', '-c', '[ -t 0 ] && read a && stty size && echo got-$a']), terminal: true }));
      assert.ok(e.terminal !== null);
      assert.equal(e.stdout, null);
      resizeTerminal(e.terminal, { width: 90, height: 30 });
      const term = new tty.ReadStream(e.terminal);
      let out = '';
      const read = new Promise<void>((resolve) => {
        term.on('data', (d) => (out += d.toString()));
        term.on('error', () => resolve());
        term.on('close', () => resolve());
      });
      const input = terminalWriter(e.terminal);
      input.end('x\n');
      assert.equal((await e.exited).exitCode, 0, out);
      await read;
      term.destroy();
      assert.match(out, /30 90/);
      assert.match(out, /got-x/);
      signalProcess(init, 'SIGKILL');
      await init.exited;
    }));

  it('clamps a negative oom_score_adj to 0 with a warning', () =>
    inContainerTest(async (ctx) => {
      const h = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['cat', '/proc/self/oom_score_adj'], { oomScoreAdj: -998 })));
      assert.equal(h.warnings.length, 1);
      assert.match(h.warnings[0], /oom_score_adj -998: (EACCES|EPERM), clamped to 0/);
      const out = collect(h.stdout);
      const err = collect(h.stderr);
      await startProcess(h);
      assert.equal((await h.exited).exitCode, 0);
      assert.equal((await out).trim(), '0');
      await err;
      const pos = await run(ctx, baseSpec(ctx.rootfs, ['cat', '/proc/self/oom_score_adj'], { oomScoreAdj: 500 }));
      assert.equal(pos.stdout.trim(), '500');
      assert.deepEqual(pos.handle.warnings, []);
    }));

  it('changes nothing of this process: its oom_score_adj, its dumpable flag', () =>
    inContainerTest(async (ctx) => {
      const oomBefore = fs.readFileSync('/proc/self/oom_score_adj', 'utf8');
      assert.equal(dumpable(), true);
      const r = await run(ctx, baseSpec(ctx.rootfs, ['sh', '-c', 'id -u; cat /proc/self/oom_score_adj'], { oomScoreAdj: 1000, uid: 1000, gid: 1000 }));
      assert.equal(r.stdout, '1000\n1000\n', r.stderr);
      assert.equal(fs.readFileSync('/proc/self/oom_score_adj', 'utf8'), oomBefore);
      assert.equal(dumpable(), true, 'a setresuid in the child must not make us non-dumpable');
    }));

  it('leaks no fds into the container', () =>
    inContainerTest(async (ctx) => {
      const r = await run(ctx, baseSpec(ctx.rootfs, ['ls', '/proc/self/fd']));
      assert.equal(r.exitCode, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split(/\s+/), ['0', '1', '2', '3']);
    }));

  // The event loop's longest gap meanwhile is measured in bench/event-loop-gap.ts, not here.
  it('starts 50 containers at once, each in its own pid namespace', () =>
    inContainerTest(async (ctx) => {
      const results = await Promise.all(Array.from({ length: 50 }, () => run(ctx, baseSpec(ctx.rootfs, ['sh', '-c', 'echo $$']))));
      for (const r of results) {
        assert.equal(r.exitCode, 0, r.stderr);
        assert.equal(r.stdout, '1\n');
      }
    }));

  it('adopts a running process from its pid and a dup of its pidfd', () =>
    inContainerTest(async (ctx) => {
      const h = await createProcess(baseSpec(ctx.rootfs, ['sleep', '30'], { stdout: 'null', stderr: 'null' }));
      await startProcess(h);
      const record = handoffProcess(h);
      const adopted = ctx.track(adoptProcess({ ...record, pidfd: dupFd(record.pidfd) }));
      fs.closeSync(record.pidfd);
      assert.equal(adopted.pid, h.pid);
      signalProcess(adopted, 'SIGKILL');
      assert.deepEqual(await adopted.exited, { exitCode: null, signal: 'SIGKILL' });
    }));

  it('gives the process a controlling pty when terminal is set', () =>
    inContainerTest(async (ctx) => {
      const h = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['sh', '-c', '[ -t 0 ] && [ -t 1 ] && echo is-a-tty'], { terminal: true })));
      assert.equal(h.stdout, null);
      assert.notEqual(h.terminal, null);
      assert.ok(h.terminal !== null);
      const term = new tty.ReadStream(h.terminal);
      let out = '';
      // Read until the line is there, or until the slave side is gone (EIO: whatever was
      // written before has been read by then).
      const read = new Promise<void>((resolve) => {
        term.on('data', (d) => {
          out += d.toString();
          if (/is-a-tty/.test(out)) resolve();
        });
        term.on('error', () => resolve());
        term.on('close', () => resolve());
      });
      await startProcess(h);
      assert.equal((await h.exited).exitCode, 0);
      await read;
      term.destroy();
      assert.match(out, /is-a-tty/);
    }));

  it('takes terminal input from terminalWriter and a size from resizeTerminal', () =>
    inContainerTest(async (ctx) => {
      const h = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['sh', '-c', 'read a; stty size; echo got-$a'], { terminal: true })));
      assert.ok(h.terminal !== null);
      const term = new tty.ReadStream(h.terminal);
      let out = '';
      const read = new Promise<void>((resolve) => {
        term.on('data', (d) => (out += d.toString()));
        term.on('error', () => resolve());
        term.on('close', () => resolve());
      });
      resizeTerminal(h.terminal, { width: 77, height: 22 });
      const input = terminalWriter(h.terminal);
      await startProcess(h);
      input.end('hello\n');
      assert.equal((await h.exited).exitCode, 0);
      await read;
      term.destroy();
      assert.match(out, /22 77/);
      assert.match(out, /got-hello/);
    }));

  it('a terminal whose process reads no input holds terminalWriter back, never the event loop', () =>
    inContainerTest(async (ctx) => {
      const h = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['sleep', '3600'], { terminal: true })));
      assert.ok(h.terminal !== null);
      const term = new tty.ReadStream(h.terminal);
      term.on('error', () => {});
      term.resume();
      await startProcess(h);
      const input = terminalWriter(h.terminal);
      input.on('error', () => {});
      // Far more than a pty's input buffer: the writes wait for room, the loop goes on.
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let accepted = 0;
      for (let i = 0; i < 16; i++) if (input.write(chunk)) accepted++;
      await new Promise((r) => setImmediate(r));
      assert.ok(input.writableLength > 0, 'the terminal took everything');
      assert.ok(accepted < 16);
      signalProcess(h, 'SIGKILL');
      await h.exited;
      input.destroy();
      term.destroy();
    }));

  it('a terminal whose slave side is closed everywhere fails terminalWriter with EIO, after a bounded number of wakes', () =>
    inContainerTest(async (ctx) => {
      // The master then takes ~14 KB, then EAGAIN for good while epoll reports the hang-up
      // on every wait: without the hang-up check the writer spun the loop until the exit.
      const h = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['sh', '-c', 'exec </dev/null >/dev/null 2>&1; exec sleep 3600'], { terminal: true })));
      assert.ok(h.terminal !== null);
      const input = terminalWriter(h.terminal);
      const term = new tty.ReadStream(h.terminal);
      // The master reads EIO once no fd of the slave side is open: the hang-up is there.
      const hungUp = new Promise<void>((resolve) => {
        term.on('error', () => resolve());
        term.on('close', () => resolve());
      });
      term.resume();
      await startProcess(h);
      await hungUp;
      const failed = new Promise<Error>((resolve) => input.on('error', resolve));
      input.write(Buffer.alloc(64 * 1024, 'x'));
      const err = await failed;
      assert.ok(err instanceof SyscallError, String(err));
      assert.equal(err.code, 'EIO');
      assert.match(err.message, /terminal hung up/);
      assert.ok(input.wakes < 100, `${input.wakes} wakes`);
      signalProcess(h, 'SIGKILL');
      await h.exited;
      input.destroy();
      term.destroy();
    }));

  it('a canonical-mode terminal whose line overflows takes 1 MiB from terminalWriter in a bounded number of wakes', () =>
    inContainerTest(async (ctx) => {
      // No newline, nobody reading: the master reports POLLOUT while it takes nothing until
      // the kernel discards the overflowing line. A wake without progress backs off.
      const h = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['sleep', '3600'], { terminal: true })));
      assert.ok(h.terminal !== null);
      const term = new tty.ReadStream(h.terminal);
      term.on('error', () => {});
      term.resume();
      await startProcess(h);
      const input = terminalWriter(h.terminal);
      await new Promise<void>((resolve, reject) => input.write(Buffer.alloc(1024 * 1024, 'x'), (e) => (e ? reject(e) : resolve())));
      assert.ok(input.wakes < 2000, `${input.wakes} wakes`);
      signalProcess(h, 'SIGKILL');
      await h.exited;
      input.destroy();
      term.destroy();
    }));

  it('maps ids in a new user namespace', () =>
    inContainerTest(async (ctx) => {
      const spec = baseSpec(ctx.rootfs, ['sh', '-c', 'id -u; cat /proc/self/uid_map /proc/self/gid_map; ls -ln /dev/null; echo ok > /tmp/f'], {
        namespaces: (['user', 'pid', 'mount', 'ipc', 'uts', 'network'] as const).map((type) => ({ type, path: null })),
        uidMappings: [{ containerId: 0, hostId: 100000, size: 65536 }],
        gidMappings: [{ containerId: 0, hostId: 100000, size: 65536 }],
      });
      // The namespace's root is host uid 100000: it must be able to reach the rootfs.
      fs.chmodSync(ctx.dir, 0o711);
      fs.chownSync(path.join(ctx.rootfs, 'tmp'), 100000, 100000);
      const r = await run(ctx, spec);
      assert.equal(r.exitCode, 0, r.stderr);
      const lines = r.stdout.split('\n');
      assert.equal(lines[0], '0');
      assert.match(lines[1], /^\s*0\s+100000\s+65536$/);
      assert.match(lines[2], /^\s*0\s+100000\s+65536$/);
      assert.equal(fs.statSync(path.join(ctx.rootfs, 'tmp', 'f')).uid, 100000);

      // Exec into it: joining a user namespace needs an unshared mm (no CLONE_VM path).
      const init = ctx.track(await createProcess({ ...spec, args: ['sleep', '30'], stdout: 'null', stderr: 'null' }));
      await startProcess(init);
      const e = ctx.track(await execProcess(init, { ...execSpec(['sh', '-c', 'id -u; cat /proc/self/uid_map; echo $$']), uid: 0 }));
      const [out, err, st] = await Promise.all([collect(e.stdout), collect(e.stderr), e.exited]);
      assert.equal(st.exitCode, 0, err);
      const el = out.split('\n');
      assert.equal(el[0], '0');
      assert.match(el[1], /^\s*0\s+100000\s+65536$/);
      assert.ok(Number(el[2]) > 1);
      signalProcess(init, 'SIGKILL');
      await init.exited;
    }));

  it('reports an exec failure after start, naming the executable', () =>
    inContainerTest(async (ctx) => {
      fs.writeFileSync(path.join(ctx.rootfs, 'bin', 'garbage'), 'not a program\0\0\0', { mode: 0o755 });
      const h = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['garbage'], { stdout: 'null', stderr: 'null' })));
      await assert.rejects(startProcess(h), (e: unknown) => {
        assert.ok(e instanceof SyscallError, String(e));
        assert.equal(e.code, 'ENOEXEC');
        assert.equal(e.path, 'garbage');
        assert.equal(e.syscall, 'execve');
        return true;
      });
      assert.equal((await h.exited).exitCode, 127);
    }));

  it('reaps a process whose exec failed after start, even when it is released at once', () =>
    inContainerTest(async (ctx) => {
      fs.writeFileSync(path.join(ctx.rootfs, 'bin', 'garbage'), 'not a program\0\0\0', { mode: 0o755 });
      const h = await createProcess(baseSpec(ctx.rootfs, ['garbage'], { stdout: 'null', stderr: 'null' }));
      await assert.rejects(startProcess(h), { code: 'ENOEXEC' });
      await releaseProcess(h);
      assert.equal(fs.existsSync(`/proc/${h.pid}`), false, 'no zombie left behind');
    }));

  it('rejects an invalid seccomp profile before cloning, naming the bad word', () =>
    inContainerTest(async (ctx) => {
      const seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        defaultErrnoRet: null,
        architectures: [],
        flags: [],
        syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_BOGUS', errnoRet: null, args: [] }],
      };
      await assert.rejects(createProcess(baseSpec(ctx.rootfs, ['true'], { seccomp })), (e: unknown) => {
        assert.ok(e instanceof SyscallError);
        assert.equal(e.code, 'EINVAL');
        assert.equal(e.path, 'SCMP_ACT_BOGUS');
        return true;
      });
    }));

  it('joins the given cgroups, and a new cgroup namespace is rooted there', () =>
    inContainerTest(async (ctx) => {
      // The pids controller's hierarchy: its /proc/self/cgroup line is "N:pids:/path" on v1, "0::/path" on v2.
      const pids = await controllerMount('pids');
      const line = pids.v1 ? '[0-9]+:pids:' : '0::';
      const cg = fs.mkdtempSync(path.join(pids.dir, 'nodecri-test-'));
      try {
        const procs = [path.join(cg, 'cgroup.procs')];
        const r = await run(ctx, baseSpec(ctx.rootfs, ['cat', '/proc/self/cgroup'], { cgroupProcs: procs }));
        assert.equal(r.exitCode, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^${line}/${path.basename(cg)}$`, 'm'));
        const withNs = await run(
          ctx,
          baseSpec(ctx.rootfs, ['cat', '/proc/self/cgroup'], {
            cgroupProcs: procs,
            namespaces: (['pid', 'mount', 'ipc', 'uts', 'network', 'cgroup'] as const).map((type) => ({ type, path: null })),
          }),
        );
        assert.match(withNs.stdout, new RegExp(`^${line}/$`, 'm'));
      } finally {
        fs.rmdirSync(cg);
      }
    }));

  it('creates a container in the pid namespace of another container', () =>
    inContainerTest(async (ctx) => {
      const a = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['sleep', '30'], { stdout: 'null', stderr: 'null' })));
      await startProcess(a);
      const b = await run(
        ctx,
        baseSpec(ctx.rootfs, ['sh', '-c', 'ps -o pid,args; echo $$'], {
          namespaces: [{ type: 'pid', path: `/proc/${a.pid}/ns/pid` }, ...(['mount', 'ipc', 'uts', 'network'] as const).map((type) => ({ type, path: null }))],
        }),
      );
      assert.equal(b.exitCode, 0, b.stderr);
      assert.match(b.stdout, /^\s*1\s+sleep 30$/m);
      assert.ok(Number(b.stdout.trim().split('\n').pop()) > 1);
      assert.ok(b.handle.pid > 0);
      signalProcess(a, 'SIGKILL');
      await a.exited;
    }));

  it('a child stuck before READY holds no pool thread', { skip: fs.existsSync('/sys/fs/cgroup/freezer/cgroup.procs') ? false : 'no v1 freezer' }, () =>
    inContainerTest(async (ctx) => {
      const init = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['sleep', '60'], { stdout: 'null', stderr: 'null' })));
      await startProcess(init);
      // Execs that join a frozen cgroup stop there, before READY, until it thaws.
      const frozen = `/sys/fs/cgroup/freezer/nodecri-test-${process.pid}-before-ready`;
      fs.mkdirSync(frozen);
      const state = (v: string) => fs.writeFileSync(path.join(frozen, 'freezer.state'), v);
      let execs: Promise<ProcessHandle>[] = [];
      try {
        state('FROZEN');
        // As many as run at once (maxConcurrentExecs, 4) and more, and as many as libuv's
        // pool has threads (4 here): if each waited on a thread for its READY, the fs call
        // below would queue behind them until they time out.
        execs = Array.from({ length: 6 }, () => execProcess(init, { ...execSpec(['true']), stdout: 'null', stderr: 'null', cgroupProcs: [path.join(frozen, 'cgroup.procs')] }));
        const order: string[] = [];
        for (const e of execs)
          e.then(
            () => order.push('exec'),
            () => order.push('exec failed'),
          );
        await fs.promises.stat(ctx.rootfs);
        order.push('fs call');
        state('THAWED');
        for (const h of await Promise.all(execs)) assert.equal((await h.exited).exitCode, 0);
        assert.deepEqual(order, ['fs call', ...execs.map(() => 'exec')]);
      } finally {
        state('THAWED');
        for (const r of await Promise.allSettled(execs)) if (r.status === 'fulfilled') await releaseProcess(r.value);
        fs.rmdirSync(frozen);
      }
      signalProcess(init, 'SIGKILL');
      await init.exited;
    }),
  );

  it('still reaps a process released while it runs: it never stays a zombie', () =>
    inContainerTest(async (ctx) => {
      const h = await createProcess(baseSpec(ctx.rootfs, ['sleep', '30'], { stdout: 'null', stderr: 'null' }));
      await startProcess(h);
      await releaseProcess(h);
      // Killed by someone else after the release (a cgroup kill, say): still our child.
      process.kill(h.pid, 'SIGKILL');
      // A released handle's watcher no longer holds the event loop: hold it while we wait.
      const hold = setInterval(() => undefined, 1000);
      const st = await h.exited.finally(() => clearInterval(hold));
      assert.equal(st.signal, 'SIGKILL');
      assert.equal(fs.existsSync(`/proc/${h.pid}`), false, 'reaped, not a zombie');
    }));

  it('watches each exec process itself: 200 execs, every exit code and pid right', () =>
    inContainerTest(async (ctx) => {
      const init = ctx.track(await createProcess(baseSpec(ctx.rootfs, ['sleep', '60'], { stdout: 'null', stderr: 'null' })));
      await startProcess(init);
      const one = async (i: number): Promise<void> => {
        const code = i % 2 === 0 ? 0 : 3;
        // It waits for a line on stdin: alive (not yet reaped) while we read its status.
        const e = await execProcess(init, { ...execSpec(['sh', '-c', `echo $$; read x; exit ${code}`]), stdin: 'pipe' });
        try {
          // The handle's pid, seen from the container's namespace, is the shell that runs.
          const nspid = /^NSpid:\s*\d+\s+(\d+)\s*$/m.exec(fs.readFileSync(`/proc/${e.pid}/status`, 'utf8'))?.[1];
          fs.writeSync(e.stdin!, 'go\n');
          fs.closeSync(e.stdin!);
          const [out, , st] = await Promise.all([collect(e.stdout), collect(e.stderr), e.exited]);
          assert.equal(st.exitCode, code, `exec ${i}`);
          assert.equal(out.trim(), nspid, `exec ${i}: the handle watches the process that ran`);
        } finally {
          await releaseProcess(e);
        }
      };
      const inFlight = 4;
      for (let i = 0; i < 200; i += inFlight) await Promise.all(Array.from({ length: inFlight }, (_, k) => one(i + k)));
      signalProcess(init, 'SIGKILL');
      await init.exited;
    }));

  it('resolves mount points inside the rootfs: image symlinks cannot reach the host', () =>
    inContainerTest(async (ctx) => {
      const victim = path.join(ctx.dir, 'victim');
      fs.mkdirSync(victim);
      // An image whose /sys points at a host path and whose /dev climbs out relatively.
      fs.rmdirSync(path.join(ctx.rootfs, 'sys'));
      fs.symlinkSync(path.join(victim, 'sys'), path.join(ctx.rootfs, 'sys'));
      fs.rmdirSync(path.join(ctx.rootfs, 'dev'));
      fs.symlinkSync('../../../../../../victim/dev', path.join(ctx.rootfs, 'dev'));
      const r = await run(ctx, baseSpec(ctx.rootfs, ['sh', '-c', 'ls /dev/null /sys/kernel >/dev/null && echo ok']));
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, 'ok\n');
      assert.deepEqual(fs.readdirSync(victim), []);
      assert.ok(fs.existsSync(path.join(ctx.rootfs, victim, 'sys')), 'the mount point was made inside the rootfs');
    }));
});
