/**
 * SandboxService against a fake host and a fake pod network: no root, no addon, no CNI.
 * The fakes keep a model of the kernel (mounts, cgroups, attachments, processes) and a log
 * of every call, so each test can say what was made, what was undone, and that nothing is
 * left. Records, run dirs and journals are real files under a temp dir.
 */
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import type net from 'node:net';
import path from 'node:path';
import { defaultConfig, type Config } from '../config';
import { RuntimeError } from '../domain/errors';
import { EventBus, type ContainerEvent } from '../domain/events';
import { Operations } from '../domain/operations';
import { undoer } from '../domain/undoer';
import { CgroupConfigError, noResources, type CgroupManager, type CgroupStats, type Resources } from '../linux/cgroups';
import type { CniNetworkConfig } from '../network/cni-config';
import type { PodNetworkAttachment, PodNetworkRequest } from '../network/pod-network';
import { createLogger } from '../obs/logger';
import { fromJson } from '../state/atomic-file';
import { OpJournals } from '../state/op-journal';
import { noFaults } from '../util/faults';
import type { SandboxRecord, SandboxSpec } from './model';
import { SandboxService, type SandboxHost, type SandboxNetwork } from './service';
import { SandboxRecords } from './records';

const log = createLogger('fatal');

/** The steps a test can make fail, each named as the fake logs its call. */
type Step = 'waitForConfig' | 'pinNamespaces' | 'cgroups.create' | 'attach' | 'mountShm' | 'infra.start';

class Deferred<T = void> {
  resolve!: (v: T) => void;
  readonly promise = new Promise<T>((r) => (this.resolve = r));
}

/** The kernel and the CNI as the fakes see them. */
class World {
  readonly calls: string[] = [];
  readonly mounts = new Set<string>();
  readonly cgroups = new Map<string, Resources>();
  readonly attachments = new Map<string, PodNetworkAttachment>();
  readonly processes = new Map<number, string>();
  readonly failAt = new Set<Step>();
  /** when set, attach() waits for it (a test holds a Run in flight) */
  attachGate: Deferred | null = null;
  readonly attachCalled = new Deferred();
  private nextPid = 1000;

  constructor(readonly cgroupRoot: string) {}

  step(name: Step, arg: string): void {
    this.calls.push(`${name} ${arg}`);
    if (this.failAt.has(name)) throw new Error(`injected failure of ${name}`);
  }

  /** Calls since `mark` (an index into calls), for "what happened after this point". */
  since(mark: number): string[] {
    return this.calls.slice(mark);
  }

  /** What is left of every kind, for "nothing is left behind". */
  left(): { mounts: string[]; cgroups: string[]; attachments: string[]; processes: number[] } {
    return { mounts: [...this.mounts], cgroups: [...this.cgroups.keys()], attachments: [...this.attachments.keys()], processes: [...this.processes.keys()] };
  }

  async removeTree(dir: string): Promise<void> {
    this.calls.push(`removeTree ${dir}`);
    for (const m of [...this.mounts]) if (m === dir || m.startsWith(`${dir}/`)) this.mounts.delete(m);
    await fsp.rm(dir, { recursive: true, force: true });
  }

  cgroupManager(): CgroupManager {
    const dirOf = (p: string) => path.join(this.cgroupRoot, p);
    return {
      mode: 'v2',
      deviceControl: { v1: false, bpf: true },
      create: async (p, resources) => {
        this.step('cgroups.create', p);
        if (resources.memoryLimitBytes !== null && resources.memoryLimitBytes < 0n) throw new CgroupConfigError('must not be negative', 'memoryLimitBytes');
        await fsp.mkdir(dirOf(p), { recursive: true });
        this.cgroups.set(p, resources);
      },
      update: async (p, resources) => {
        this.calls.push(`cgroups.update ${p}`);
        if (!this.cgroups.has(p)) throw Object.assign(new Error(`no cgroup ${p}`), { code: 'ENOENT' });
        this.cgroups.set(p, { ...this.cgroups.get(p)!, ...resources });
      },
      attach: async () => {},
      stats: async (p): Promise<CgroupStats> => {
        if (!this.cgroups.has(p)) throw new Error(`no cgroup ${p}`);
        return { cpuUsageNanos: 5n, memoryUsageBytes: 4096n, memoryWorkingSetBytes: 4096n, memoryLimitBytes: null, pids: 0, oomKillCount: 0 };
      },
      killAll: async (p) => {
        this.calls.push(`cgroups.killAll ${p}`);
      },
      // Idempotent, as the real one: a cgroup that is not there counts as removed.
      remove: async (p) => {
        this.calls.push(`cgroups.remove ${p}`);
        for (const c of [...this.cgroups.keys()]) if (c === p || c.startsWith(`${p}/`)) this.cgroups.delete(c);
        await fsp.rm(dirOf(p), { recursive: true, force: true });
      },
      paths: (p) => {
        if (p.includes('..')) throw new CgroupConfigError(`cgroup path ${p} has ..`);
        return { unified: dirOf(p) };
      },
    };
  }

  host(): SandboxHost {
    return {
      pinNamespaces: async ({ types, dir }) => {
        this.step('pinNamespaces', types.join(','));
        await fsp.mkdir(dir, { recursive: true });
        const pins: Record<string, string> = {};
        for (const t of types) {
          pins[t] = path.join(dir, t);
          this.mounts.add(pins[t]);
        }
        return pins;
      },
      unpinNamespace: async (p) => {
        this.calls.push(`unpinNamespace ${path.basename(p)}`);
        this.mounts.delete(p);
      },
      mountShm: async (target) => {
        this.step('mountShm', target);
        this.mounts.add(target);
      },
      unmount: async (target) => {
        this.calls.push(`unmount ${target}`);
        this.mounts.delete(target);
      },
      mountPoints: async () => new Set(this.mounts),
      removeTree: (dir) => this.removeTree(dir),
      cgroups: this.cgroupManager(),
      infra: {
        start: async (req) => {
          this.step('infra.start', req.cgroupPath);
          const pid = this.nextPid++;
          this.processes.set(pid, req.cgroupPath);
          return { pid, startTime: `t${pid}`, warnings: [] };
        },
        stop: async (pid) => {
          this.calls.push(`infra.stop ${pid}`);
          this.processes.delete(pid);
        },
        adopt: async (pid, startTime) => this.processes.has(pid) && startTime === `t${pid}`,
      },
      connectInNetns: async (netnsPath, port) => {
        this.calls.push(`connect ${netnsPath === null ? 'host' : path.basename(netnsPath)} ${port}`);
        if (port === 1) throw Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:${port}`), { code: 'ECONNREFUSED' });
        return { port } as unknown as net.Socket;
      },
    };
  }

  network(config: CniNetworkConfig): SandboxNetwork {
    return {
      waitForConfig: async () => {
        this.calls.push('waitForConfig');
        return this.failAt.has('waitForConfig') ? null : config;
      },
      attach: async (net, r) => {
        this.step('attach', r.sandboxId.slice(0, 12));
        this.attachCalled.resolve();
        await this.attachGate?.promise;
        const a = { name: net.name, ifName: 'eth0', ips: ['10.88.0.5'], hostVeth: 'veth0' };
        this.attachments.set(r.sandboxId, a);
        return a;
      },
      // Idempotent, as CNI DEL.
      detach: async (_a, r) => {
        this.calls.push(`detach ${r.sandboxId.slice(0, 12)}`);
        this.attachments.delete(r.sandboxId);
      },
      usage: async () => ({ rxBytes: 1n, rxErrors: 0n, txBytes: 2n, txErrors: 0n }),
      removeCacheTempFiles: async () => [],
      cachedAttachments: async () =>
        [...this.attachments.keys()].map((sandboxId) => ({
          sandboxId,
          network: config.name,
          detach: async () => {
            this.calls.push(`detach cached ${sandboxId.slice(0, 12)}`);
            this.attachments.delete(sandboxId);
          },
        })),
    };
  }

  /** The journal undo of a recorded attachment (what a recovery runs). */
  detachRecorded(r: PodNetworkRequest): void {
    this.calls.push(`detachRecorded ${r.sandboxId.slice(0, 12)}`);
    this.attachments.delete(r.sandboxId);
  }
}

class RecordingBus extends EventBus {
  readonly published: ContainerEvent[] = [];
  override publish(event: ContainerEvent): void {
    this.published.push(event);
    super.publish(event);
  }
}

const cniConfig: CniNetworkConfig = { file: '/etc/cni/net.d/10-test.conflist', name: 'testnet', cniVersion: '1.0.0', plugins: [], raw: { name: 'testnet', plugins: [] } };

function podSpec(over: Partial<SandboxSpec> = {}): SandboxSpec {
  return {
    name: 'web',
    namespace: 'default',
    uid: 'uid-1',
    attempt: 0,
    hostname: '',
    logDirectory: '',
    dns: { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local'], options: ['ndots:5'] },
    portMappings: [],
    labels: { app: 'web' },
    annotations: {},
    cgroupParent: '',
    sysctls: {},
    namespaces: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', targetId: '', userns: 'NODE' },
    resources: null,
    runtimeHandler: '',
    shmSizeBytes: 64n * 1024n * 1024n,
    privileged: false,
    ...over,
  };
}

interface Env {
  dir: string;
  config: Config;
  world: World;
  events: RecordingBus;
  journals: OpJournals;
  service: SandboxService;
  /** what the container side was asked: stopAll <id>, removeAll <id> */
  containerCalls: string[];
  /** a second service over the same disk and kernel: a restarted daemon */
  restarted(): SandboxService;
}

let tmp = '';
let env: Env;

function makeEnv(): Env {
  const dir = fs.mkdtempSync(path.join(tmp, 'env-'));
  const config: Config = { ...defaultConfig(), root: path.join(dir, 'root'), runroot: path.join(dir, 'run') };
  const world = new World(path.join(dir, 'cgroupfs'));
  const events = new RecordingBus();
  const journals = new OpJournals(path.join(config.runroot, 'ops'));
  const containerCalls: string[] = [];
  // The container side of the sandbox service, recording what it is asked.
  const containers = { stopAll: async (s: string) => void containerCalls.push(`stopAll ${s}`), removeAll: async (s: string) => void containerCalls.push(`removeAll ${s}`) };
  const make = (): SandboxService => {
    const host = world.host();
    const ops = new Operations(
      journals,
      undoer({
        removeTree: (d) => world.removeTree(d),
        unmountIfMounted: (t) => host.unmount(t),
        cgroups: host.cgroups,
        detachNetwork: async (a) => world.detachRecorded(a.request),
        releaseRootfs: async () => {},
      }),
      noFaults,
    );
    return new SandboxService({ config: () => config, log, events, host, network: world.network(cniConfig), ops, containers, records: new SandboxRecords() });
  };
  return { dir, config, world, events, journals, service: make(), containerCalls, restarted: make };
}

async function exists(p: string): Promise<boolean> {
  return fsp.access(p).then(
    () => true,
    () => false,
  );
}

async function journalsLeft(e: Env): Promise<string[]> {
  return (await fsp.readdir(e.journals.dir).catch(() => [] as string[])).filter((n) => n.endsWith('.jsonl'));
}

/** The id of the sandbox being made, from the dir its pins were asked for. */
function runDirOf(e: Env, id: string): string {
  return path.join(e.config.runroot, 'sandboxes', id);
}

function recordFile(e: Env, id: string): string {
  return path.join(e.config.root, 'sandboxes', `${id}.json`);
}

async function recordOnDisk(e: Env, id: string): Promise<SandboxRecord> {
  return fromJson<SandboxRecord>(await fsp.readFile(recordFile(e, id), 'utf8'));
}

/** Nothing of any pod is left: kernel, CNI, disk, journals, names. */
async function assertNothingLeft(e: Env): Promise<void> {
  assert.deepEqual(e.world.left(), { mounts: [], cgroups: [], attachments: [], processes: [] });
  assert.deepEqual(await fsp.readdir(path.join(e.config.runroot, 'sandboxes')).catch(() => []), []);
  assert.deepEqual(await fsp.readdir(path.join(e.config.root, 'sandboxes')).catch(() => []), []);
  assert.deepEqual(await journalsLeft(e), []);
  assert.deepEqual(e.service.list(), []);
}

const isKind = (kind: string, pattern: RegExp) => (e: unknown) => {
  assert.ok(e instanceof RuntimeError, `expected a RuntimeError, got ${String(e)}`);
  assert.equal(e.kind, kind);
  assert.match(e.message, pattern);
  return true;
};

describe('SandboxService with a fake host', { timeout: 60_000 }, () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-sandbox-unit-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  beforeEach(() => {
    env = makeEnv();
  });
  afterEach(() => fs.rmSync(env.dir, { recursive: true, force: true }));

  test("readySandbox and portForward: NOT_FOUND, FAILED_PRECONDITION when not ready, the pod's netns pin (the host's for host network)", async () => {
    const { service, world } = env;
    assert.throws(() => service.readySandbox('0123456789ab'), isKind('not-found', /sandbox 0123456789ab not found/));
    const id = await service.run(podSpec(), null);
    assert.equal(service.readySandbox(id.slice(0, 8)).id, id);
    world.calls.length = 0;
    assert.deepEqual(await service.portForward(id, 8080), { port: 8080 });
    assert.deepEqual(world.calls, ['connect net 8080']);
    await assert.rejects(service.portForward(id, 1), isKind('unavailable', /failed to connect to localhost:1 inside the network namespace .*ECONNREFUSED/));
    await assert.rejects(service.portForward(id, 0), isKind('invalid-argument', /port 0/));
    await assert.rejects(service.portForward(id, 65536), isKind('invalid-argument', /port 65536/));
    const hostPod = await service.run(podSpec({ name: 'host', uid: 'uid-2', namespaces: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD', targetId: '', userns: 'NODE' } }), null);
    world.calls.length = 0;
    await service.portForward(hostPod, 80);
    assert.deepEqual(world.calls, ['connect host 80']);
    await service.stop(id, null);
    assert.throws(() => service.readySandbox(id), isKind('failed-precondition', /is not ready/));
    await assert.rejects(service.portForward(id, 8080), isKind('failed-precondition', /is not ready/));
    await service.remove(id, null);
    await service.remove(hostPod, null);
  });

  test('RunPodSandbox: namespaces pinned, cgroup made, network attached, shm mounted, files written, record persisted', async () => {
    const { service, world, config } = env;
    const id = await service.run(podSpec(), null);
    assert.match(id, /^[0-9a-f]{64}$/);
    const runDir = runDirOf(env, id);
    const podCgroup = `/nodecri/pod-${id}`;
    assert.deepEqual(world.calls, ['waitForConfig', 'pinNamespaces net,uts,ipc', `cgroups.create ${podCgroup}`, `attach ${id.slice(0, 12)}`, `mountShm ${runDir}/shm`]);
    assert.deepEqual(world.left(), {
      mounts: ['net', 'uts', 'ipc'].map((t) => path.join(runDir, 'ns', t)).concat(path.join(runDir, 'shm')),
      cgroups: [podCgroup],
      attachments: [id],
      processes: [],
    });

    const r = service.mustGet(id.slice(0, 8));
    assert.equal(r.state, 'SANDBOX_READY');
    assert.equal(r.name, 'k8s_web_default_uid-1_0');
    assert.equal(r.runtimeHandler, config.defaultRuntime);
    assert.deepEqual(r.pins, { net: path.join(runDir, 'ns', 'net'), ipc: path.join(runDir, 'ns', 'ipc'), uts: path.join(runDir, 'ns', 'uts'), user: null });
    assert.deepEqual(r.shm, { path: path.join(runDir, 'shm'), mounted: true });
    assert.deepEqual(r.cgroup, { path: podCgroup, created: true });
    assert.deepEqual(r.network, { name: 'testnet', ifName: 'eth0', ips: ['10.88.0.5'], hostVeth: 'veth0' });
    assert.equal(r.infra, null);
    assert.equal(r.hostname, id.slice(0, 12));

    // The pod files, with the pod's IP and DNS.
    assert.equal(await fsp.readFile(r.files.hostname, 'utf8'), `${id.slice(0, 12)}\n`);
    assert.match(await fsp.readFile(r.files.hosts, 'utf8'), new RegExp(`^10\\.88\\.0\\.5\\t${id.slice(0, 12)}$`, 'm'));
    assert.match(await fsp.readFile(r.files.resolvConf, 'utf8'), /^nameserver 10\.96\.0\.10$/m);

    // The record on disk is the commit point; the journal is gone.
    const onDisk = await recordOnDisk(env, id);
    assert.equal(onDisk.id, id);
    assert.equal(onDisk.state, 'SANDBOX_READY');
    assert.deepEqual(onDisk.pins, r.pins);
    assert.deepEqual(await journalsLeft(env), []);
    assert.deepEqual(
      env.events.published.map((e) => e.type),
      ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT'],
    );

    // Stats read the cgroup and the network through the fakes.
    const stats = await service.stats(r);
    assert.equal(stats.cgroup?.memoryUsageBytes, 4096n);
    assert.deepEqual(stats.network, { name: 'eth0', rxBytes: 1n, rxErrors: 0n, txBytes: 2n, txErrors: 0n });
  });

  test('a pod sharing its PID namespace gets an infra process in its own cgroup under the pod', async () => {
    const { service, world } = env;
    const id = await service.run(podSpec({ namespaces: { network: 'POD', pid: 'POD', ipc: 'POD', targetId: '', userns: 'NODE' } }), null);
    const r = service.mustGet(id);
    const infraCgroup = `/nodecri/pod-${id}/nodecri-infra-${id}`;
    assert.equal(world.calls.at(-1), `infra.start ${infraCgroup}`);
    assert.deepEqual(r.infra, { pid: 1000, startTime: 't1000', cgroupPath: infraCgroup });
    assert.deepEqual([...world.processes.keys()], [1000]);
    await service.remove(id, null);
    assert.ok(world.calls.includes('infra.stop 1000'));
    await assertNothingLeft(env);
  });

  test('host network and host IPC: no netns or ipc pin, no CNI call, the host /dev/shm', async () => {
    const { service, world } = env;
    const id = await service.run(podSpec({ namespaces: { network: 'NODE', pid: 'CONTAINER', ipc: 'NODE', targetId: '', userns: 'NODE' } }), null);
    const r = service.mustGet(id);
    assert.deepEqual(world.calls, [`cgroups.create /nodecri/pod-${id}`]);
    assert.deepEqual(r.pins, { net: null, ipc: null, uts: null, user: null });
    assert.deepEqual(r.shm, { path: '/dev/shm', mounted: false });
    assert.equal(r.network, null);
    assert.equal(r.hostname, os.hostname());
    await service.remove(id, null);
    await assertNothingLeft(env);
  });

  test("kubelet's cgroup_parent is made when missing and never removed", async () => {
    const { service, world } = env;
    const id = await service.run(podSpec({ cgroupParent: '/kubepods/besteffort/poduid-1' }), null);
    assert.deepEqual(service.mustGet(id).cgroup, { path: '/kubepods/besteffort/poduid-1', created: false });
    await service.remove(id, null);
    assert.deepEqual(world.left().cgroups, ['/kubepods/besteffort/poduid-1']);
    assert.ok(!world.calls.includes('cgroups.remove /kubepods/besteffort/poduid-1'));
  });

  // Each step fails in turn: the stack undoes exactly what was made before it, last first,
  // and leaves nothing (kernel, CNI, disk, journal, name).
  const failures: Array<{ at: Step; undone: (id: string, runDir: string) => string[] }> = [
    { at: 'waitForConfig', undone: () => [] },
    { at: 'pinNamespaces', undone: (_id, runDir) => [`removeTree ${runDir}`] },
    {
      at: 'cgroups.create',
      undone: (id, runDir) => [`cgroups.remove /nodecri/pod-${id}`, 'unpinNamespace ipc', 'unpinNamespace uts', 'unpinNamespace net', `removeTree ${runDir}`],
    },
    {
      at: 'attach',
      // The attach failed: nothing to DEL in-process (the plugin rolled itself back).
      undone: (id, runDir) => [
        `unmount ${runDir}/shm`,
        `cgroups.remove /nodecri/pod-${id}`,
        'unpinNamespace ipc',
        'unpinNamespace uts',
        'unpinNamespace net',
        `removeTree ${runDir}`,
      ],
    },
    {
      at: 'mountShm',
      undone: (id, runDir) => [
        `detach ${id.slice(0, 12)}`,
        `cgroups.remove /nodecri/pod-${id}`,
        'unpinNamespace ipc',
        'unpinNamespace uts',
        'unpinNamespace net',
        `removeTree ${runDir}`,
      ],
    },
    {
      at: 'infra.start',
      undone: (id, runDir) => [
        `cgroups.remove /nodecri/pod-${id}/nodecri-infra-${id}`,
        `unmount ${runDir}/shm`,
        `detach ${id.slice(0, 12)}`,
        `cgroups.remove /nodecri/pod-${id}`,
        'unpinNamespace ipc',
        'unpinNamespace uts',
        'unpinNamespace net',
        `removeTree ${runDir}`,
      ],
    },
  ];
  for (const { at, undone } of failures) {
    test(`a failure at ${at} unwinds exactly what was made`, async () => {
      const { service, world } = env;
      world.failAt.add(at);
      const spec = podSpec({ namespaces: { network: 'POD', pid: 'POD', ipc: 'POD', targetId: '', userns: 'NODE' } });
      await assert.rejects(service.run(spec, null), at === 'waitForConfig' ? isKind('failed-precondition', /NetworkPluginNotReady/) : /injected failure/);
      const failedAt = world.calls.findIndex((c) => c.startsWith(at));
      assert.ok(failedAt >= 0, world.calls.join('\n'));
      const id = /\/sandboxes\/([0-9a-f]{64})/.exec(world.calls.join('\n'))?.[1] ?? /pod-([0-9a-f]{64})/.exec(world.calls.join('\n'))?.[1] ?? '';
      const runDir = runDirOf(env, id);
      // The attach runs beside shm: with a failure at attach, shm is mounted after it.
      const made = at === 'attach' ? world.since(failedAt + 1).filter((c) => c.startsWith('mountShm')) : [];
      assert.deepEqual(world.since(failedAt + 1), [...made, ...undone(id, runDir)]);
      await assertNothingLeft(env);
      assert.deepEqual(env.events.published, []);
      // The name is free again: the same pod runs once the failure is gone.
      world.failAt.clear();
      const again = await service.run(spec, null);
      assert.equal(service.mustGet(again).state, 'SANDBOX_READY');
    });
  }

  test('a failure to persist the record (the commit point) unwinds everything', async () => {
    const { service, world, config } = env;
    // The record dir is a file: the record cannot be written.
    await fsp.mkdir(config.root, { recursive: true });
    await fsp.writeFile(path.join(config.root, 'sandboxes'), '');
    await assert.rejects(service.run(podSpec(), null), /EEXIST|ENOTDIR/);
    const id = /pod-([0-9a-f]{64})/.exec(world.calls.join('\n'))![1];
    const runDir = runDirOf(env, id);
    assert.deepEqual(world.since(world.calls.indexOf(`mountShm ${runDir}/shm`) + 1), [
      `unmount ${runDir}/shm`,
      `detach ${id.slice(0, 12)}`,
      `cgroups.remove /nodecri/pod-${id}`,
      'unpinNamespace ipc',
      'unpinNamespace uts',
      'unpinNamespace net',
      `removeTree ${runDir}`,
    ]);
    await fsp.rm(path.join(config.root, 'sandboxes'));
    await assertNothingLeft(env);
  });

  test('an abort after the pod was made unwinds it', async () => {
    const { service, world } = env;
    const ac = new AbortController();
    world.attachGate = new Deferred();
    const running = service.run(podSpec(), ac.signal);
    await world.attachCalled.promise;
    ac.abort(new Error('client went away'));
    world.attachGate.resolve();
    await assert.rejects(running, /client went away/);
    await assertNothingLeft(env);
  });

  test('a second identical RunPodSandbox returns the same id, in flight and after', async () => {
    const { service, world } = env;
    world.attachGate = new Deferred();
    const first = service.run(podSpec(), null);
    await world.attachCalled.promise;
    // The first is held inside its network step: the second waits for it.
    const second = service.run(podSpec(), null);
    world.attachGate.resolve();
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a, b);
    const third = await service.run(podSpec(), null);
    assert.equal(third, a);
    assert.equal(world.calls.filter((c) => c.startsWith('pinNamespaces')).length, 1);
    assert.equal(service.list().length, 1);
    // Another attempt of the pod is another sandbox.
    const other = await service.run(podSpec({ attempt: 1 }), null);
    assert.notEqual(other, a);
  });

  test('the name of a pod that is not ready is refused for a new one until it is removed', async () => {
    const { service } = env;
    const id = await service.run(podSpec(), null);
    await service.stop(id, null);
    await assert.rejects(service.run(podSpec(), null), isKind('already-exists', new RegExp(`reserved for ${id}`)));
    await service.remove(id, null);
    assert.notEqual(await service.run(podSpec(), null), id);
  });

  test('StopPodSandbox and RemovePodSandbox are idempotent; unknown ids are fine', async () => {
    const { service, world } = env;
    const id = await service.run(podSpec(), null);
    const runDir = runDirOf(env, id);
    const containerCalls = env.containerCalls;

    let mark = world.calls.length;
    await service.stop(id, null);
    assert.deepEqual(world.since(mark), [`detach ${id.slice(0, 12)}`, `unmount ${runDir}/shm`]);
    const r = service.mustGet(id);
    assert.equal(r.state, 'SANDBOX_NOTREADY');
    assert.equal(r.notReadyReason, 'stopped');
    assert.deepEqual(r.network?.ips, []);
    assert.equal(r.shm.mounted, false);
    assert.equal((await recordOnDisk(env, id)).state, 'SANDBOX_NOTREADY');
    // The pins stay until removal.
    assert.deepEqual(
      world.left().mounts,
      ['net', 'uts', 'ipc'].map((t) => path.join(runDir, 'ns', t)),
    );

    // A second stop unmounts nothing and runs no second CNI DEL (this daemon released the
    // network, as containerd skips a closed netns); the containers are asked again, as they
    // may have been made since.
    mark = world.calls.length;
    await service.stop(id, null);
    assert.deepEqual(world.since(mark), []);
    assert.deepEqual(
      env.events.published.map((e) => e.type).filter((t) => t === 'CONTAINER_STOPPED_EVENT'),
      ['CONTAINER_STOPPED_EVENT'],
    );

    mark = world.calls.length;
    await service.remove(id, null);
    assert.deepEqual(world.since(mark), ['unpinNamespace net', 'unpinNamespace ipc', 'unpinNamespace uts', `cgroups.remove /nodecri/pod-${id}`]);
    assert.equal(service.get(id), null);
    assert.equal(await exists(runDir), false);
    await assertNothingLeft(env);
    assert.deepEqual(containerCalls, [`stopAll ${id}`, `stopAll ${id}`, `stopAll ${id}`, `removeAll ${id}`]);
    assert.equal(env.events.published.at(-1)?.type, 'CONTAINER_DELETED_EVENT');

    mark = world.calls.length;
    await service.remove(id, null);
    await service.stop(id, null);
    await service.stop('f'.repeat(64), null);
    await service.remove('f'.repeat(64), null);
    assert.deepEqual(world.since(mark), []);
    assert.deepEqual(await journalsLeft(env), []);
  });

  test('RemovePodSandbox of a ready pod stops it first', async () => {
    const { service } = env;
    const id = await service.run(podSpec({ namespaces: { network: 'POD', pid: 'POD', ipc: 'POD', targetId: '', userns: 'NODE' } }), null);
    await service.remove(id, null);
    await assertNothingLeft(env);
    assert.deepEqual(
      env.events.published.map((e) => e.type),
      ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT'],
    );
  });

  test('UpdatePodSandboxResources reaches the pod cgroup and the record', async () => {
    const { service, world } = env;
    const id = await service.run(podSpec(), null);
    const resources = { ...noResources(), memoryLimitBytes: 256n * 1024n * 1024n };
    await service.updateResources(id, resources);
    assert.equal(world.cgroups.get(`/nodecri/pod-${id}`)?.memoryLimitBytes, 256n * 1024n * 1024n);
    assert.equal((await recordOnDisk(env, id)).spec.resources?.memoryLimitBytes, 256n * 1024n * 1024n);
    await assert.rejects(service.updateResources('f'.repeat(64), resources), isKind('not-found', /sandbox f+ not found/));
  });

  test('restore: a persisted pod comes back as it was, its name reserved', async () => {
    const spec = podSpec({ namespaces: { network: 'POD', pid: 'POD', ipc: 'POD', targetId: '', userns: 'NODE' } });
    const id = await env.service.run(spec, null);
    const before = env.service.mustGet(id);
    const restarted = env.restarted();
    await restarted.restore();
    const r = restarted.mustGet(id);
    assert.deepEqual(r, before);
    assert.equal(r.state, 'SANDBOX_READY');
    // The same pod again is the same sandbox; its infra was adopted, so it is stopped on removal.
    assert.equal(await restarted.run(spec, null), id);
    await restarted.remove(id, null);
    assert.ok(env.world.calls.includes(`infra.stop ${before.infra!.pid}`));
    env.service = restarted;
    await assertNothingLeft(env);
  });

  test('restore: a pod whose pins, shm or infra are gone is NOTREADY, and says why', async () => {
    const { service, world } = env;
    const shared = { namespaces: { network: 'POD' as const, pid: 'POD' as const, ipc: 'POD' as const, targetId: '', userns: 'NODE' as const } };
    const pinsGone = await service.run(podSpec({ ...shared, name: 'a' }), null);
    const shmGone = await service.run(podSpec({ ...shared, name: 'b' }), null);
    const infraGone = await service.run(podSpec({ ...shared, name: 'c' }), null);
    const fine = await service.run(podSpec({ ...shared, name: 'd' }), null);
    // A reboot of sorts, piece by piece.
    world.mounts.delete(service.mustGet(pinsGone).pins.net!);
    world.mounts.delete(service.mustGet(shmGone).shm.path);
    world.processes.delete(service.mustGet(infraGone).infra!.pid);

    const restarted = env.restarted();
    await restarted.restore();
    const reason = (id: string) => [restarted.mustGet(id).state, restarted.mustGet(id).notReadyReason];
    assert.deepEqual(reason(pinsGone), ['SANDBOX_NOTREADY', `namespace pins gone: ${service.mustGet(pinsGone).pins.net}`]);
    assert.deepEqual(reason(shmGone), ['SANDBOX_NOTREADY', 'shm mount gone']);
    assert.equal(restarted.mustGet(shmGone).shm.mounted, false);
    assert.deepEqual(reason(infraGone), ['SANDBOX_NOTREADY', `infra process ${service.mustGet(infraGone).infra!.pid} gone`]);
    assert.deepEqual(reason(fine), ['SANDBOX_READY', '']);
    // What restore decided is on disk too.
    const onDisk = await recordOnDisk(env, shmGone);
    assert.deepEqual([onDisk.state, onDisk.notReadyReason, onDisk.shm.mounted], ['SANDBOX_NOTREADY', 'shm mount gone', false]);

    for (const id of [pinsGone, shmGone, infraGone, fine]) await restarted.remove(id, null);
    env.service = restarted;
    await assertNothingLeft(env);
  });

  test('a journal a crash left before the record is rolled back; one after it just goes', async () => {
    const { world, journals } = env;
    const id = 'a'.repeat(64);
    const runDir = runDirOf(env, id);
    await fsp.mkdir(runDir, { recursive: true });
    world.cgroups.set(`/nodecri/pod-${id}`, noResources());
    const j = await journals.begin('RunPodSandbox', id);
    await j.append({ kind: 'tree', path: runDir });
    await j.append({ kind: 'cgroup', path: `/nodecri/pod-${id}` });
    const restarted = env.restarted();
    const [pending] = await journals.pending();
    assert.deepEqual(await restarted.rollBack(pending), { committed: false, failed: [] });
    await j.finish();
    assert.deepEqual(world.calls, [`cgroups.killAll /nodecri/pod-${id}`, `cgroups.remove /nodecri/pod-${id}`, `removeTree ${runDir}`]);
    await assertNothingLeft(env);

    // With its record on disk the pod was complete: nothing is undone.
    const made = await env.service.run(podSpec(), null);
    const late = await journals.begin('RunPodSandbox', made);
    await late.append({ kind: 'tree', path: runDirOf(env, made) });
    const mark = world.calls.length;
    const [p2] = await journals.pending();
    assert.deepEqual(await env.restarted().rollBack(p2), { committed: true, failed: [] });
    await late.finish();
    assert.deepEqual(world.since(mark), []);
    assert.equal(await exists(runDirOf(env, made)), true);
    assert.deepEqual(await journalsLeft(env), []);
  });

  test('the orphan sweep removes run dirs, pod cgroups and CNI attachments no record names', async () => {
    const { service, world, config } = env;
    const kept = await service.run(podSpec(), null);
    const orphan = 'b'.repeat(64);
    await fsp.mkdir(path.join(runDirOf(env, orphan), 'ns'), { recursive: true });
    world.mounts.add(path.join(runDirOf(env, orphan), 'ns', 'net'));
    await world.host().cgroups.create(`/nodecri/pod-${orphan}`, noResources());
    world.attachments.set(orphan, { name: 'testnet', ifName: 'eth0', ips: ['10.88.0.9'], hostVeth: null });
    // Not ours to judge: a dir that is no sandbox id, a cgroup that is no pod's.
    await fsp.mkdir(path.join(config.runroot, 'sandboxes', 'not-an-id'));
    await world.host().cgroups.create('/nodecri/something-else', noResources());

    const removed = await service.sweepOrphans();
    assert.deepEqual(removed.sort(), [`cgroup /nodecri/pod-${orphan}`, `network testnet of sandbox ${orphan}`, `run dir of sandbox ${orphan}`]);
    const left = world.left();
    assert.deepEqual(left.attachments, [kept]);
    assert.deepEqual(left.cgroups.sort(), ['/nodecri/something-else', `/nodecri/pod-${kept}`].sort());
    assert.ok(left.mounts.every((m) => m.startsWith(runDirOf(env, kept))));
    assert.deepEqual((await fsp.readdir(path.join(config.runroot, 'sandboxes'))).sort(), [kept, 'not-an-id'].sort());
  });

  // Refused with the field named, and nothing left: most before anything is made, the
  // rest (checked where the step that needs them runs) after their stack is unwound.
  describe('validation: refused naming the field, leaving nothing', () => {
    const cases: Array<{ what: string; spec: Partial<SandboxSpec>; kind: string; message: RegExp }> = [
      { what: 'an unknown runtime handler', spec: { runtimeHandler: 'kata' }, kind: 'invalid-argument', message: /^runtime handler "kata" is not configured$/ },
      {
        what: 'a systemd slice as cgroup_parent',
        spec: { cgroupParent: 'kubepods-besteffort.slice' },
        kind: 'invalid-argument',
        message: /^linux\.cgroup_parent "kubepods-besteffort\.slice" is a systemd slice, but the cgroup driver is cgroupfs/,
      },
      { what: 'a relative cgroup_parent', spec: { cgroupParent: 'kubepods/pod1' }, kind: 'invalid-argument', message: /^linux\.cgroup_parent "kubepods\/pod1" is not absolute/ },
      {
        what: 'a cgroupfs path as cgroup_parent',
        spec: { cgroupParent: '/sys/fs/cgroup/kubepods' },
        kind: 'invalid-argument',
        message: /^linux\.cgroup_parent .* is a filesystem path under the cgroup mounts/,
      },
      {
        what: 'a cgroup_parent the manager refuses',
        spec: { cgroupParent: '/kubepods/../x' },
        kind: 'invalid-argument',
        message: /^linux\.cgroup_parent "\/kubepods\/\.\.\/x": cgroup path .* has \.\./,
      },
      {
        what: 'a log_directory over NAME_MAX',
        spec: { logDirectory: `/var/log/pods/${'x'.repeat(300)}` },
        kind: 'invalid-argument',
        message: /^config\.log_directory .* has a component of 300 bytes, over NAME_MAX/,
      },
      {
        what: 'a net sysctl on the host network',
        spec: { sysctls: { 'net.ipv4.ip_forward': '1' }, namespaces: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD', targetId: '', userns: 'NODE' } },
        kind: 'invalid-argument',
        message: /^sysctl net\.ipv4\.ip_forward cannot be set for a pod on the host network$/,
      },
      {
        what: 'an IPC sysctl on the host IPC namespace',
        spec: { sysctls: { 'kernel.shmmax': '1' }, namespaces: { network: 'POD', pid: 'CONTAINER', ipc: 'NODE', targetId: '', userns: 'NODE' } },
        kind: 'invalid-argument',
        message: /^sysctl kernel\.shmmax cannot be set for a pod on the host IPC namespace$/,
      },
      {
        what: 'a pod user namespace',
        spec: { namespaces: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', targetId: '', userns: 'POD' } },
        kind: 'failed-precondition',
        message: /userns_options mode POD/,
      },
      {
        what: 'a resource the cgroup manager refuses',
        spec: { resources: { ...noResources(), memoryLimitBytes: -5n } },
        kind: 'invalid-argument',
        message: /^linux\.resources\.memory_limit_in_bytes: must not be negative$/,
      },
    ];
    for (const c of cases) {
      test(c.what, async () => {
        await assert.rejects(env.service.run(podSpec(c.spec), null), isKind(c.kind, c.message));
        await assertNothingLeft(env);
        assert.deepEqual(env.events.published, []);
      });
    }

    test('a config.runtimes entry that is not native is refused as not supported', async () => {
      env.config.runtimes = { ...env.config.runtimes, runc: { type: 'oci', path: '/usr/bin/runc', root: null } };
      await assert.rejects(env.service.run(podSpec({ runtimeHandler: 'runc' }), null), isKind('failed-precondition', /runtime handler runc \(type oci\) is not supported yet/));
      await assertNothingLeft(env);
    });
  });
});
