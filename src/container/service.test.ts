/**
 * ContainerService over a fake host: no root, no addon, no kernel objects but files, FIFOs
 * and pipes in a temp dir. The fake's "processes" are promises the test settles; their
 * stdout is the real FIFO the service made, reopened through /proc/self/fd.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { after, describe, it, mock } from 'node:test';
import { promisify } from 'node:util';
import type { Config } from '../config';
import { RuntimeError } from '../domain/errors';
import type { ContainerEvent, ContainerEventType, EventBus } from '../domain/events';
import { Operations } from '../domain/operations';
import { undoer } from '../domain/undoer';
import type { ContainerSpec } from './spec';
import { noResources, type CgroupManager, type CgroupStats } from '../linux/cgroups';
import type { ExitStatus, ProcessHandle, ProcessSpec } from '../native/process';
import { createLogger } from '../obs/logger';
import type { GeneratedContainer, GenerateInput } from '../oci/generate';
import type { OciSpec } from '../oci/types';
import type { SandboxRecord } from '../sandbox/model';
import { SandboxRecords } from '../sandbox/records';
import { OpJournals } from '../state/op-journal';
import { noFaults } from '../util/faults';
import type { ContainerRecord } from './model';
import { attachBufferBytes } from './attach';
import { execOutputGraceMs } from './exec';
import { ContainerService, type ContainerHost, type ContainerImages } from './service';
import { bareContainerSpec } from '../../test/helpers/specs';

const run = promisify(execFile);
const exists = (p: string) =>
  fsp.access(p).then(
    () => true,
    () => false,
  );
const tmpRoots: string[] = [];
const fakes: Fake[] = [];
after(async () => {
  for (const f of fakes) await f.close();
  for (const d of tmpRoots) await fsp.rm(d, { recursive: true, force: true });
});

/** A fake process: the test settles its exit; it may ignore the stop signal. */
class FakeProcess {
  readonly signals: string[] = [];
  released = false;
  started = false;
  /** one per handle given out: a daemon that dies loses its handles' exits */
  private watchers: Array<(st: ExitStatus) => void> = [];
  /** write ends of the container's stdout/stderr FIFOs, as its own */
  private readonly outputs: number[] = [];
  ignoresStopSignal = false;

  constructor(
    readonly pid: number,
    stdio: Array<ProcessSpec['stdout']>,
  ) {
    for (const s of stdio) if (typeof s === 'object' && s !== null && 'fd' in s) this.outputs.push(fs.openSync(`/proc/self/fd/${s.fd}`, 'w'));
  }

  write(text: string): void {
    if (this.outputs[0] !== undefined) fs.writeSync(this.outputs[0], text);
  }

  /** A write that may exceed the pipe's buffer: it waits (on a pool thread) for the daemon to read. */
  writeAsync(data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const fd = this.outputs[0];
      let off = 0;
      const next = (): void =>
        fs.write(fd, data, off, data.length - off, null, (e, n) => {
          if (e) return reject(e);
          off += n;
          if (off < data.length) next();
          else resolve();
        });
      next();
    });
  }

  exit(st: ExitStatus): void {
    for (const fd of this.outputs.splice(0)) fs.closeSync(fd);
    for (const w of this.watchers.splice(0)) w(st);
  }

  /** the daemon that holds its handles is gone */
  forgetHandles(): void {
    this.watchers = [];
  }

  handle(): ProcessHandle {
    const exited = new Promise<ExitStatus>((res) => this.watchers.push(res));
    return { pid: this.pid, pidfd: -1, stdin: null, stdout: null, stderr: null, terminal: null, warnings: [], exited } as unknown as ProcessHandle;
  }
}

interface Fake {
  svc: ContainerService;
  host: ContainerHost;
  root: string;
  runroot: string;
  sandbox: SandboxRecord;
  processes: Map<number, FakeProcess>;
  /** processes a restarted daemon finds alive, by pid */
  adoptable: Map<number, FakeProcess>;
  calls: string[];
  events: ContainerEvent[];
  nextEvent(type: ContainerEventType, containerId: string): Promise<ContainerEvent>;
  fail: { createProcess?: Error; startProcess?: Error; processStartTime?: Error };
  images: ContainerImages & { released: string[] };
  /**
   * A new service over the same dirs and host: a restarted daemon. The old one hands over
   * (it stops reading logs) and its handles watch nothing more.
   */
  restart(): Promise<ContainerService>;
  /** removes every container of the current service: nothing is left to keep the test process alive */
  close(): Promise<void>;
}

function fakeCgroups(calls: string[], root: string): CgroupManager {
  return {
    mode: 'v2',
    deviceControl: 'none',
    create: async (p: string) => void calls.push(`cgroup create ${p}`),
    update: async (p: string) => void calls.push(`cgroup update ${p}`),
    attach: async () => {},
    stats: async () => ({ oomKillCount: 0 }) as unknown as CgroupStats,
    killAll: async (p: string) => void calls.push(`cgroup killAll ${p}`),
    remove: async (p: string) => void calls.push(`cgroup remove ${p}`),
    paths: (p: string) => ({ unified: path.join(root, 'cgroup', p) }),
  } as unknown as CgroupManager;
}

function minimalSpec(rootfs: string, cgroupsPath: string): OciSpec {
  return {
    ociVersion: '1.1.0',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0, additionalGids: [] },
      args: ['/app'],
      env: [],
      cwd: '/',
      capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] },
      noNewPrivileges: true,
      rlimits: [],
    },
    root: { path: rootfs, readonly: false },
    hostname: 'pod',
    mounts: [],
    linux: { namespaces: [], devices: [], maskedPaths: [], readonlyPaths: [], sysctl: {}, cgroupsPath },
  } as unknown as OciSpec;
}

async function setup(): Promise<Fake> {
  const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodecri-container-unit-'));
  tmpRoots.push(base);
  const root = path.join(base, 'root');
  const runroot = path.join(base, 'run');
  const calls: string[] = [];
  const processes = new Map<number, FakeProcess>();
  const adoptable = new Map<number, FakeProcess>();
  const fail: Fake['fail'] = {};
  let nextPid = 1000;
  const cgroups = fakeCgroups(calls, base);
  const events: ContainerEvent[] = [];
  const waiters: Array<{ type: ContainerEventType; id: string; resolve: (e: ContainerEvent) => void }> = [];
  const bus = {
    publish(e: ContainerEvent) {
      events.push(e);
      for (const w of waiters.splice(0)) {
        if (w.type === e.type && w.id === e.containerId) w.resolve(e);
        else waiters.push(w);
      }
    },
  } as unknown as EventBus;
  const nextEvent = (type: ContainerEventType, id: string) => new Promise<ContainerEvent>((resolve) => waiters.push({ type, id, resolve }));

  const released: string[] = [];
  const images: Fake['images'] = {
    released,
    status: async (ref: string) => (ref === 'busybox' ? { id: 'sha256:b', repoDigests: ['busybox@sha256:d'], config: {} } : null),
    prepareRootfs: async (_image: string, id: string) => {
      const d = path.join(root, 'rootfs-store', id);
      for (const s of ['lower', 'upper', 'work']) await fsp.mkdir(path.join(d, s), { recursive: true });
      return { lowerDirs: [path.join(d, 'lower')], upperDir: path.join(d, 'upper'), workDir: path.join(d, 'work') };
    },
    releaseRootfs: async (id: string) => {
      released.push(id);
      await fsp.rm(path.join(root, 'rootfs-store', id), { recursive: true, force: true });
    },
    rootfsOwners: async () => [],
  } as unknown as Fake['images'];

  const find = (h: ProcessHandle) => processes.get(h.pid) ?? adoptable.get(h.pid)!;
  const host: ContainerHost = {
    cgroups,
    mountOverlay: async (_l, _u, _w, target) => void calls.push(`mount ${target}`),
    unmount: async (target) => void calls.push(`unmount ${target}`),
    mkfifo: async (p) => {
      if (await exists(p)) throw Object.assign(new Error(`mknod ${p}: EEXIST`), { code: 'EEXIST' });
      await run('mkfifo', ['-m', '600', p]);
    },
    removeTree: (dir) => fsp.rm(dir, { recursive: true, force: true }),
    createProcess: async (spec: ProcessSpec) => {
      if (fail.createProcess) throw fail.createProcess;
      const p = new FakeProcess(nextPid++, [spec.stdout, spec.stderr]);
      processes.set(p.pid, p);
      calls.push(`createProcess ${p.pid}`);
      return p.handle();
    },
    startProcess: async (h) => {
      if (fail.startProcess) throw fail.startProcess;
      find(h).started = true;
    },
    execProcess: async () => {
      throw new Error('no exec in this fake');
    },
    signalProcess: (h, sig) => {
      const p = typeof h === 'number' ? processes.get(h)! : find(h);
      p.signals.push(String(sig));
      if (sig === 'SIGKILL') p.exit({ exitCode: null, signal: 'SIGKILL' });
      else if (!p.ignoresStopSignal) p.exit({ exitCode: null, signal: sig as NodeJS.Signals });
    },
    releaseProcess: async (h) => {
      find(h).released = true;
    },
    refProcess: () => {},
    reapStrays: () => 0,
    untilExitReapingStrays: (_h, until) => until,
    adoptStarted: async (pid, startTime) => {
      const p = adoptable.get(pid);
      return p && startTime === `${pid}0` ? p.handle() : null;
    },
    processStartTime: async (pid) => {
      if (fail.processStartTime) throw fail.processStartTime;
      return `${pid}0`;
    },
    unwatchAllExits: () => 0,
    dupFd: () => {
      throw new Error('no dup in this fake');
    },
    keepAcrossExec: () => {},
    resizeTerminal: () => {},
    terminalWriter: () => {
      throw new Error('no terminal in this fake');
    },
    generateSpec: async (input: GenerateInput) =>
      ({
        spec: minimalSpec(input.rootfs, `/pod/nodecri-${input.containerId}`),
        stopSignal: { name: 'SIGTERM', number: 15 },
        resources: noResources(),
      }) as unknown as GeneratedContainer,
    defaults: {} as GenerateInput['defaults'],
  };

  const sandboxes = new SandboxRecords();
  const sandbox = {
    version: 1,
    id: 'f'.repeat(64),
    name: 'k8s_pod_ns_uid_0',
    state: 'SANDBOX_READY',
    spec: { name: 'pod', namespace: 'ns', uid: 'uid', attempt: 0, logDirectory: path.join(base, 'logs') },
    infra: null,
  } as unknown as SandboxRecord;
  sandboxes.byId.set(sandbox.id, sandbox);
  sandboxes.index.add(sandbox.id);

  const log = createLogger('fatal', { write: () => {} });
  const make = () =>
    new ContainerService({
      config: () => ({ root, runroot }) as Config,
      log,
      events: bus,
      images,
      sandboxes,
      host,
      ops: new Operations(
        new OpJournals(path.join(runroot, 'ops')),
        undoer({
          removeTree: host.removeTree,
          unmountIfMounted: async (p) => void calls.push(`unmount ${p}`),
          cgroups,
          detachNetwork: async () => {},
          releaseRootfs: (id) => images.releaseRootfs(id),
        }),
        noFaults,
      ),
      metrics: null,
      keeper: null,
    });
  let current = make();
  const restart = async () => {
    await current.prepareHandoff();
    for (const p of processes.values()) p.forgetHandles();
    current = make();
    return current;
  };
  const close = async () => {
    for (const c of current.list()) await current.remove(c.id);
  };
  const fake = { svc: current, host, root, runroot, sandbox, processes, adoptable, calls, events, nextEvent, fail, images, restart, close };
  fakes.push(fake);
  return fake;
}

/** A container's spec as the CRI layer would hand it over: the defaults everywhere. */
function containerConfig(name = 'app', logPath = 'app/0.log'): ContainerSpec {
  return bareContainerSpec({ name, logPath });
}

const onDisk = async (r: ContainerRecord) => JSON.parse(await fsp.readFile(path.join(r.stateDir, 'container.json'), 'utf8')) as ContainerRecord;
const journals = async (f: Fake) => (await fsp.readdir(path.join(f.runroot, 'ops')).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));

describe('ContainerService over a fake host', { timeout: 60_000 }, () => {
  it('creates, starts, records the exit with its log, reports it, and removes', async () => {
    const f = await setup();
    const id = await f.svc.create(f.sandbox.id, containerConfig());
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(await f.svc.create(f.sandbox.id, containerConfig()), id, 'an identical retry gets the same container');
    const r = f.svc.mustGet(id.slice(0, 12));
    assert.equal(r.state, 'CONTAINER_CREATED');
    assert.equal(r.sandboxId, f.sandbox.id);
    const proc = f.processes.get(r.pid!)!;
    assert.equal(r.pidStartTime, `${proc.pid}0`);
    assert.ok(await exists(path.join(r.stateDir, 'config.json')));
    assert.equal((await onDisk(r)).state, 'CONTAINER_CREATED');
    assert.ok(f.calls.includes(`mount ${r.rootfs}`));
    assert.ok(f.calls.includes(`cgroup create ${r.cgroupPath}`));
    assert.deepEqual(await journals(f), [], 'the create journal is gone once it committed');
    assert.equal(f.svc.ofSandbox(f.sandbox.id).length, 1);

    await f.svc.start(id);
    assert.equal(r.state, 'CONTAINER_RUNNING');
    assert.ok(proc.started);
    assert.notEqual(r.startedAt, '0');
    assert.equal((await onDisk(r)).state, 'CONTAINER_RUNNING');
    await assert.rejects(f.svc.start(id), (e: unknown) => e instanceof RuntimeError && e.kind === 'failed-precondition');

    const stopped = f.nextEvent('CONTAINER_STOPPED_EVENT', id);
    proc.write('hello\n');
    proc.exit({ exitCode: 0, signal: null });
    await stopped;
    const status = f.svc.mustGet(id);
    assert.deepEqual(
      { state: status.state, exitCode: status.exitCode, reason: status.reason, pid: status.pid, pidStartTime: status.pidStartTime },
      { state: 'CONTAINER_EXITED', exitCode: 0, reason: 'Completed', pid: null, pidStartTime: null },
    );
    assert.notEqual(status.finishedAt, '0');
    assert.ok(BigInt(status.finishedAt) >= BigInt(status.startedAt));
    assert.equal((await onDisk(r)).state, 'CONTAINER_EXITED');
    assert.ok(proc.released, 'the process handle is released once the exit is recorded');
    assert.match(await fsp.readFile(r.logPath, 'utf8'), /^\S+ stdout F hello\n$/);

    await f.svc.remove(id);
    assert.equal(f.svc.get(id), null);
    assert.ok(f.calls.includes(`cgroup killAll ${r.cgroupPath}`) && f.calls.includes(`cgroup remove ${r.cgroupPath}`));
    assert.ok(f.calls.includes(`unmount ${r.rootfs}`));
    assert.deepEqual(f.images.released, [id]);
    assert.equal(await exists(r.stateDir), false);
    assert.equal(await exists(r.runDir), false);
    assert.ok(await exists(r.logPath), 'the log stays');
    assert.deepEqual(
      f.events.filter((e) => e.containerId === id).map((e) => e.type),
      ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT'],
    );
    assert.deepEqual(await journals(f), []);
    await f.svc.remove(id); // unknown: fine
    assert.notEqual(await f.svc.create(f.sandbox.id, containerConfig()), id, 'the name is free again');
  });

  it('runningContainer: NOT_FOUND for an unknown id, FAILED_PRECONDITION naming the state otherwise', async () => {
    const f = await setup();
    const kind = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e instanceof RuntimeError ? `${e.kind}: ${e.message}` : String(e);
      }
      return 'no error';
    };
    assert.match(
      kind(() => f.svc.runningContainer('0123456789ab')),
      /^not-found: container 0123456789ab not found/,
    );
    const id = await f.svc.create(f.sandbox.id, containerConfig('running', ''));
    assert.match(
      kind(() => f.svc.runningContainer(id)),
      /^failed-precondition: .* is not running \(it is created\)/,
    );
    await f.svc.start(id);
    assert.equal(f.svc.runningContainer(id.slice(0, 10)).id, id);
    const proc = f.processes.get(f.svc.mustGet(id).pid!)!;
    const stopped = f.nextEvent('CONTAINER_STOPPED_EVENT', id);
    proc.exit({ exitCode: 3, signal: null });
    await stopped;
    assert.match(
      kind(() => f.svc.runningContainer(id)),
      /^failed-precondition: .* is not running \(it is exited\)/,
    );
    await assert.rejects(
      f.svc.execStream(id, ['true'], { stdin: null, stdout: null, stderr: null, tty: false, onResize: () => {} }, new AbortController().signal),
      (e: unknown) => e instanceof RuntimeError && e.kind === 'failed-precondition',
    );
  });

  it('exec: a client that holds its output back past the grace still gets all of it (4 MiB after the exit)', async () => {
    const f = await setup();
    const id = await f.svc.create(f.sandbox.id, containerConfig('execd', ''));
    await f.svc.start(id);
    // The exec's stdout is a FIFO whose write end the test holds, as a command whose output
    // is still in the pipe when it exits (or a child that keeps writing).
    const fifo = path.join(f.runroot, 'exec-out');
    await run('mkfifo', ['-m', '600', fifo]);
    const readFd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const writeFd = fs.openSync(fifo, fs.constants.O_WRONLY);
    let exit: (st: ExitStatus) => void = () => {};
    const exited = new Promise<ExitStatus>((res) => (exit = res));
    f.host.execProcess = async () => ({ pid: 4242, pidfd: -1, stdin: null, stdout: readFd, stderr: null, terminal: null, warnings: [], exited }) as unknown as ProcessHandle;
    const data = randomBytes(4 << 20);
    const writer = fs.createWriteStream('', { fd: writeFd });
    writer.on('error', () => {});
    writer.end(data);
    // A client that takes nothing until told: its stream is full after the first chunk.
    const received: Buffer[] = [];
    let held = true;
    const pending: Array<() => void> = [];
    let firstChunk = () => {};
    const gotFirst = new Promise<void>((res) => (firstChunk = res));
    const stdout = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _enc, cb) {
        received.push(chunk);
        firstChunk();
        if (held) pending.push(cb);
        else cb();
      },
    });
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const result = f.svc.execStream(id, ['cat', 'big.log'], { stdin: null, stdout, stderr: null, tty: false, onResize: () => {} }, new AbortController().signal);
      await gotFirst;
      await new Promise((r) => setImmediate(r));
      assert.ok(stdout.writableNeedDrain, 'the client holds the output back');
      exit({ exitCode: 0, signal: null });
      // runExec is in its output grace once the exit is seen: far more than the grace goes by.
      for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
      mock.timers.tick(10 * execOutputGraceMs);
      held = false;
      for (const cb of pending.splice(0)) cb();
      assert.deepEqual(await result, { exitCode: 0 });
      assert.equal(Buffer.concat(received).length, data.length);
      assert.ok(Buffer.concat(received).equals(data), 'the same bytes');
    } finally {
      mock.timers.reset();
      writer.destroy();
    }
  });

  it('attach: two clients see the output the log gets; they are detached at the exit or when they go', async () => {
    const f = await setup();
    const id = await f.svc.create(f.sandbox.id, containerConfig('attached'));
    await f.svc.start(id);
    const r = f.svc.mustGet(id);
    const proc = f.processes.get(r.pid!)!;
    const client = () => {
      const out = new PassThrough();
      const err = new PassThrough();
      let text = '';
      out.on('data', (c: Buffer) => (text += `out:${c.toString()}`));
      err.on('data', (c: Buffer) => (text += `err:${c.toString()}`));
      const io = { stdin: null, stdout: out, stderr: err, tty: false, onResize: () => {} };
      return { io, text: () => text };
    };
    const a = client();
    const b = client();
    const gone = new AbortController();
    const c = client();
    const attachedA = f.svc.attach(id, a.io, new AbortController().signal);
    const attachedB = f.svc.attach(id.slice(0, 8), b.io, new AbortController().signal);
    const attachedC = f.svc.attach(id, c.io, gone.signal);
    gone.abort();
    await attachedC;
    proc.write('hello\n');
    const stopped = f.nextEvent('CONTAINER_STOPPED_EVENT', id);
    proc.exit({ exitCode: 0, signal: null });
    await stopped;
    await Promise.all([attachedA, attachedB]);
    assert.equal(a.text(), 'out:hello\n');
    assert.equal(b.text(), 'out:hello\n');
    assert.equal(c.text(), '', 'a client that went away is no longer attached');
    assert.match(await fsp.readFile(r.logPath, 'utf8'), /^\S+ stdout F hello\n$/);
    await assert.rejects(f.svc.attach(id, a.io, new AbortController().signal), (e: unknown) => e instanceof RuntimeError && e.kind === 'failed-precondition');
  });

  it('attach: a client that takes nothing stalls neither the container nor the log; what it cannot take is dropped for it', async () => {
    const f = await setup();
    const id = await f.svc.create(f.sandbox.id, containerConfig('chatty'));
    await f.svc.start(id);
    const r = f.svc.mustGet(id);
    const proc = f.processes.get(r.pid!)!;
    let taken = 0;
    // Takes the first write, then never calls back: everything after waits in it.
    const stuck = new Writable({ highWaterMark: 1024, write: (c: Buffer) => void (taken += c.length) });
    const attached = f.svc.attach(id, { stdin: null, stdout: stuck, stderr: null, tty: false, onResize: () => {} }, new AbortController().signal);
    const line = Buffer.from(`${'x'.repeat(99)}\n`);
    const lines = Math.ceil((4 * attachBufferBytes) / line.length);
    await proc.writeAsync(Buffer.concat(Array.from({ length: lines }, () => line)));
    const stopped = f.nextEvent('CONTAINER_STOPPED_EVENT', id);
    proc.exit({ exitCode: 0, signal: null });
    await stopped;
    await attached;
    const records = (await fsp.readFile(r.logPath, 'utf8')).split('\n').filter(Boolean);
    assert.equal(records.length, lines, 'the log has every line');
    assert.ok(taken + stuck.writableLength <= attachBufferBytes + 64 * 1024, `the client holds at most its bound (${taken + stuck.writableLength} bytes)`);
    stuck.destroy();
  });

  it('stops with the stop signal, then SIGKILL once the timeout passes', async () => {
    const f = await setup();
    const stubborn = await f.svc.create(f.sandbox.id, containerConfig('stubborn', ''));
    const polite = await f.svc.create(f.sandbox.id, containerConfig('polite', ''));
    await f.svc.start(stubborn);
    await f.svc.start(polite);
    const s = f.processes.get(f.svc.mustGet(stubborn).pid!)!;
    const p = f.processes.get(f.svc.mustGet(polite).pid!)!;
    s.ignoresStopSignal = true;

    await f.svc.stop(stubborn, 1);
    assert.deepEqual(s.signals, ['SIGTERM', 'SIGKILL']);
    const rs = f.svc.mustGet(stubborn);
    assert.deepEqual([rs.state, rs.exitCode, rs.reason], ['CONTAINER_EXITED', 137, 'Error']);

    // A timeout it never reaches: the exit of the stop signal ends the wait.
    await f.svc.stop(polite, 3600);
    assert.deepEqual(p.signals, ['SIGTERM']);
    const rp = f.svc.mustGet(polite);
    assert.deepEqual([rp.state, rp.exitCode, rp.reason], ['CONTAINER_EXITED', 143, 'Error']);

    await f.svc.stop(polite, 0); // exited already: nothing more is sent
    assert.deepEqual(p.signals, ['SIGTERM']);
    await assert.rejects(f.svc.stop('0'.repeat(64), 0), (e: unknown) => e instanceof RuntimeError && e.kind === 'not-found');
  });

  it('a stop whose caller gives up stops waiting and sends nothing more: the container runs on', async () => {
    const f = await setup();
    const id = await f.svc.create(f.sandbox.id, containerConfig('stubborn', ''));
    await f.svc.start(id);
    const s = f.processes.get(f.svc.mustGet(id).pid!)!;
    s.ignoresStopSignal = true;
    const caller = new AbortController();
    const stopping = f.svc.stop(id, 3600, caller.signal);
    assert.deepEqual(s.signals, ['SIGTERM'], 'the stop signal goes at once');
    caller.abort();
    await assert.rejects(stopping, (e: unknown) => e instanceof DOMException && e.name === 'AbortError');
    assert.deepEqual(s.signals, ['SIGTERM'], 'no SIGKILL');
    assert.equal(f.svc.mustGet(id).state, 'CONTAINER_RUNNING');
    // A stop that is waited for still ends it.
    await f.svc.stop(id, 0);
    assert.deepEqual(s.signals, ['SIGTERM', 'SIGKILL']);
  });

  it('a container stopped before it was started exits without running, and the pod stops and removes all its containers', async () => {
    const f = await setup();
    const a = await f.svc.create(f.sandbox.id, containerConfig('a', ''));
    const b = await f.svc.create(f.sandbox.id, containerConfig('b', ''));
    await f.svc.start(b);
    await f.svc.stopAll(f.sandbox.id);
    const ra = f.svc.mustGet(a);
    assert.deepEqual([ra.state, ra.exitCode, ra.reason, ra.message, ra.pid], ['CONTAINER_EXITED', 0, 'Error', 'stopped before it was started', null]);
    assert.ok(f.processes.get(1000)!.released && !f.processes.get(1000)!.started);
    assert.equal(f.svc.mustGet(b).state, 'CONTAINER_EXITED');
    await assert.rejects(f.svc.start(a), (e: unknown) => e instanceof RuntimeError && e.kind === 'failed-precondition');
    await f.svc.removeAll(f.sandbox.id);
    assert.deepEqual(f.svc.list(), []);
  });

  it('a failed create undoes every step', async () => {
    const f = await setup();
    f.fail.createProcess = Object.assign(new Error('clone: EPERM'), { code: 'EPERM' });
    await assert.rejects(f.svc.create(f.sandbox.id, containerConfig()), /EPERM/);
    assert.deepEqual(f.svc.list(), []);
    const ids = (await fsp.readdir(path.join(f.root, 'containers')).catch(() => [] as string[])).concat(
      await fsp.readdir(path.join(f.runroot, 'containers')).catch(() => [] as string[]),
    );
    assert.deepEqual(ids, [], 'no container dir is left');
    assert.equal(f.images.released.length, 1, 'the rootfs is released');
    assert.ok(f.calls.some((c) => c.startsWith('cgroup remove')));
    assert.ok(f.calls.some((c) => c.startsWith('unmount ')));
    assert.deepEqual(await journals(f), []);
    delete f.fail.createProcess;
    assert.match(await f.svc.create(f.sandbox.id, containerConfig()), /^[0-9a-f]{64}$/, 'the name was released');
  });

  it('a start that fails making the process again unwinds its cleanup stack and stays created', async () => {
    const f = await setup();
    const id = await f.svc.create(f.sandbox.id, containerConfig());
    const held = f.processes.get(f.svc.mustGet(id).pid!)!;
    // A restarted daemon: the held process died with the old one.
    const svc = await f.restart();
    await svc.restore(null);
    const r = svc.mustGet(id);
    assert.deepEqual([r.state, r.pid, r.pidStartTime], ['CONTAINER_CREATED', null, null]);

    f.fail.processStartTime = new Error('no such process');
    await assert.rejects(svc.start(id), /no such process/);
    const remade = f.processes.get(held.pid + 1)!;
    assert.deepEqual(remade.signals, ['SIGKILL'], 'the process made for the start is killed');
    assert.ok(remade.released);
    assert.deepEqual([r.state, r.pid], ['CONTAINER_CREATED', null]);
    assert.deepEqual(await journals(f), [], 'the client was told: no journal is left');

    delete f.fail.processStartTime;
    await svc.start(id);
    assert.equal(r.state, 'CONTAINER_RUNNING');
    assert.equal(r.pid, held.pid + 2);
  });

  it('a start the kernel refuses leaves the container exited with StartError', async () => {
    const f = await setup();
    const id = await f.svc.create(f.sandbox.id, containerConfig());
    const proc = f.processes.get(f.svc.mustGet(id).pid!)!;
    f.fail.startProcess = new Error('exec /app: ENOENT');
    const stopped = f.nextEvent('CONTAINER_STOPPED_EVENT', id);
    await assert.rejects(f.svc.start(id), (e: unknown) => e instanceof RuntimeError && /ENOENT/.test(e.message));
    await stopped;
    const r = f.svc.mustGet(id);
    assert.deepEqual([r.state, r.exitCode, r.reason, r.message, r.pid, r.startedAt], ['CONTAINER_EXITED', 128, 'StartError', 'exec /app: ENOENT', null, '0']);
    assert.ok(proc.released);
    assert.equal((await onDisk(r)).state, 'CONTAINER_EXITED');
  });

  it('refuses to start on a record of an older format, naming it, rather than skip it (the sweep would remove a live container)', async () => {
    const f = await setup();
    const id = await f.svc.create(f.sandbox.id, containerConfig('old', ''));
    const r = f.svc.mustGet(id);
    const file = path.join(r.stateDir, 'container.json');
    const { spec, ...rest } = await onDisk(r);
    await fsp.writeFile(file, JSON.stringify({ ...rest, version: 1, config: { metadata: { name: spec.name } } }));
    const svc = await f.restart();
    await assert.rejects(svc.restore(null), (e: Error) => e.message.includes(`container record ${file} has format 1`));
    assert.ok(fs.existsSync(r.stateDir), 'the record is left as it was');
  });

  it('restores persisted records: a running container is adopted and its exit recorded; a gone one is exited, code unknown', async () => {
    const f = await setup();
    const alive = await f.svc.create(f.sandbox.id, containerConfig('alive', ''));
    const gone = await f.svc.create(f.sandbox.id, containerConfig('gone', ''));
    await f.svc.start(alive);
    await f.svc.start(gone);
    const pAlive = f.processes.get(f.svc.mustGet(alive).pid!)!;
    // The daemon dies here; the next one finds the first process still there.
    f.adoptable.set(pAlive.pid, pAlive);
    const svc = await f.restart();
    await svc.restore(null);
    assert.equal(svc.list().length, 2);
    const ra = svc.mustGet(alive);
    assert.deepEqual([ra.state, ra.pid], ['CONTAINER_RUNNING', pAlive.pid]);
    const rg = svc.mustGet(gone);
    assert.deepEqual([rg.state, rg.exitCode, rg.reason, rg.pid], ['CONTAINER_EXITED', 255, 'ContainerStatusUnknown', null]);
    assert.equal((await onDisk(rg)).state, 'CONTAINER_EXITED');

    const stopped = f.nextEvent('CONTAINER_STOPPED_EVENT', alive);
    pAlive.exit({ exitCode: 3, signal: null });
    await stopped;
    assert.deepEqual([ra.state, ra.exitCode, ra.reason], ['CONTAINER_EXITED', 3, 'Error']);
    assert.equal((await onDisk(ra)).exitCode, 3);
    await assert.rejects(svc.create(f.sandbox.id, containerConfig('alive', '')), (e: unknown) => e instanceof RuntimeError && e.kind === 'already-exists');
  });

  it('loads no native code', () => {
    const loaded = Object.keys(require.cache).filter((k) => k.endsWith('.node') || /[/\\]native[/\\](binding|process|fs|mounts)\.js$/.test(k));
    assert.deepEqual(loaded, []);
  });
});
