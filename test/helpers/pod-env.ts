/**
 * A whole node for container tests: a daemon with its own dirs, a CNI network of its own
 * (real bridge + host-local), a cgroup parent of its own, and a busybox image (every
 * applet, built from Debian's busybox-static) imported offline before start. cleanup()
 * removes every pod, stops the daemon and undoes the rest, even after a failure.
 */
import { staticBusybox } from './busybox';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CriClient } from './cri-client';
import assert from 'node:assert/strict';
import { bridgePorts, debianCniDir, ipamAllocations, setUpTestCni, writeFailingPlugin, type TestCni } from './cni';
import { diff, snapshot, type LeakScope } from './leaks';
import { mainJs, makeTempDir, startTestDaemon, type TestDaemon } from './daemon';
import { buildImage, writeOciLayout, type LayerEntries } from './images';

const execFileAsync = promisify(execFile);

export const busyboxRef = 'docker.io/library/busybox:test';

/** busybox with a hard link per applet, /etc/passwd and /etc/group with root and 1000. */
export function fullBusyboxLayer(): LayerEntries {
  const mtime = 1_677_628_800;
  const applets = execFileSync(staticBusybox, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== 'busybox' && !s.includes('/'));
  const e: LayerEntries = [
    { name: 'bin/', type: 'directory', mode: 0o755, mtime },
    { name: 'bin/busybox', type: 'file', mode: 0o755, mtime, data: fs.readFileSync(staticBusybox) },
    { name: 'etc/', type: 'directory', mode: 0o755, mtime },
    { name: 'etc/passwd', type: 'file', mode: 0o644, mtime, data: Buffer.from('root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n') },
    { name: 'etc/group', type: 'file', mode: 0o644, mtime, data: Buffer.from('root:x:0:\napp:x:1000:\n') },
    { name: 'home/', type: 'directory', mode: 0o755, mtime },
    { name: 'home/app/', type: 'directory', mode: 0o755, uid: 1000, gid: 1000, mtime },
    { name: 'root/', type: 'directory', mode: 0o700, mtime },
    { name: 'tmp/', type: 'directory', mode: 0o1777, mtime },
    { name: 'proc/', type: 'directory', mode: 0o755, mtime },
    { name: 'sys/', type: 'directory', mode: 0o755, mtime },
    { name: 'dev/', type: 'directory', mode: 0o755, mtime },
  ];
  // Hard links carry the file's mode: other unpackers (containerd's) apply it to the inode.
  for (const a of applets) e.push({ name: `bin/${a}`, type: 'link', linkname: 'bin/busybox', mode: 0o755, mtime });
  return e;
}

let layoutCache: string | null = null;

/** An OCI layout of the busybox image, built once per process. */
export function busyboxLayout(dir: string): string {
  if (layoutCache && fs.existsSync(layoutCache)) return layoutCache;
  const img = buildImage([fullBusyboxLayer()], { runConfig: { Cmd: ['sh'], Env: ['PATH=/bin'] } });
  const out = path.join(dir, 'busybox-layout');
  writeOciLayout(out, img, busyboxRef);
  layoutCache = out;
  return out;
}

/** `nodecri image import` of an OCI layout into the pod env rooted at `dir` (the daemon may run). */
function importLayout(dir: string, layout: string): void {
  execFileSync(
    process.execPath,
    [mainJs, 'image', 'import', layout, '--config', path.join(dir, 'nodecri.toml'), '--config-dir', path.join(dir, 'nodecri.d'), '--root', path.join(dir, 'root')],
    {
      stdio: 'pipe',
    },
  );
}

/**
 * Builds an image from `layers` (busybox's full layer first, then these) and imports it
 * into the running env as `ref`: for tests that need an image of their own.
 */
export function importImage(env: PodEnv, ref: string, layers: LayerEntries[], runConfig: Record<string, unknown> = { Cmd: ['sh'], Env: ['PATH=/bin'] }): void {
  const layout = path.join(env.dir, `layout-${randomBytes(4).toString('hex')}`);
  writeOciLayout(layout, buildImage([fullBusyboxLayer(), ...layers], { runConfig }), ref);
  try {
    importLayout(env.dir, layout);
  } finally {
    fs.rmSync(layout, { recursive: true, force: true });
  }
}

export interface PodEnv {
  dir: string;
  cni: TestCni;
  cgroupParent: string;
  daemon: TestDaemon;
  client: CriClient;
  logDir: string;
  /** `whileDown` runs after a kill -9, before the new daemon starts (e.g. to tamper with its state) */
  restart(kind: 'kill' | 'graceful', whileDown?: () => Promise<void> | void): Promise<void>;
  /**
   * Kills the daemon (SIGKILL) unless it is gone already (e.g. killed itself at a fault
   * point), waits for its exit and starts a new one with `env` added to its environment.
   */
  replaceDaemon(env?: NodeJS.ProcessEnv): Promise<void>;
  /** Removes every pod left through the API, stops the daemon, undoes the rest. */
  cleanup(): Promise<void>;
  /** removes every pod left through the API (what cleanup starts with) */
  removePods(): Promise<void>;
}

export interface PodEnvOptions {
  extraConfig?: string;
  /** import the busybox image before start (default true) */
  image?: boolean;
  /** a plugin that fails every ADD, after the bridge */
  failingPlugin?: boolean;
  /** no CNI config at all */
  noCni?: boolean;
  /** seconds RunPodSandbox waits for a CNI config */
  cniWait?: number;
  /** drop-in config files by name (to set keys of tables the main file already has) */
  dropIns?: Record<string, string>;
  /** extra environment of the daemon (e.g. NODECRI_FAULTS) */
  env?: NodeJS.ProcessEnv;
}

/**
 * Where the cgroups under `parent` are, in every hierarchy: one per entry of /sys/fs/cgroup
 * (v1 controllers and a hybrid host's unified dir), and /sys/fs/cgroup itself when cgroup2
 * is mounted there (a v2 host).
 */
export function cgroupDirsFor(parent: string): string[] {
  const root = '/sys/fs/cgroup';
  const dirs = fs.readdirSync(root).map((h) => path.join(root, h, parent));
  if (fs.existsSync(path.join(root, 'cgroup.controllers'))) dirs.push(path.join(root, parent));
  return dirs;
}

export async function startPodEnv(opts: PodEnvOptions = {}): Promise<PodEnv> {
  const dir = makeTempDir();
  const cni = setUpTestCni(dir, { extraPlugins: opts.failingPlugin ? [{ type: 'nodecri-test-fail' }] : [] });
  if (opts.failingPlugin) writeFailingPlugin(cni);
  if (opts.noCni) fs.rmSync(cni.conflistFile);
  const cgroupParent = `/nodecri-test-${randomBytes(4).toString('hex')}`;
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  const config = [
    `[cgroup]`,
    `default_parent = "${cgroupParent}"`,
    `[network]`,
    `cni_config_dir = "${cni.confDir}"`,
    `cni_plugin_dirs = ["${debianCniDir}", "${cni.extraPluginDir}"]`,
    `cni_config_wait = ${opts.cniWait ?? 10}`,
    opts.extraConfig ?? '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'nodecri.toml'), config);
  fs.mkdirSync(path.join(dir, 'nodecri.d'), { recursive: true });
  for (const [name, text] of Object.entries(opts.dropIns ?? {})) fs.writeFileSync(path.join(dir, 'nodecri.d', name), text);
  if (opts.image ?? true) importLayout(dir, busyboxLayout(dir));
  const start = (extraEnv?: NodeJS.ProcessEnv) =>
    startTestDaemon({ dir, config, dropIns: opts.dropIns, env: { ...opts.env, ...extraEnv }, args: ['--cni-config-dir', cni.confDir] });
  const env: PodEnv = {
    dir,
    cni,
    cgroupParent,
    logDir,
    daemon: await start(),
    client: null as unknown as CriClient,
    async restart(kind, whileDown) {
      env.client.close();
      if (kind === 'kill') {
        env.daemon.proc.kill('SIGKILL');
        await env.daemon.exited;
        await whileDown?.();
        env.daemon = await start();
      } else {
        // `nodecri restart`, as an operator runs it: the same process re-execs in place. Not
        // execFileSync: the closed client's connection ends only once this loop runs again,
        // and the daemon's graceful shutdown would wait for it (shutdown_timeout).
        const d = env.daemon;
        const { stdout: out } = await execFileAsync(
          process.execPath,
          [mainJs, 'restart', '--config', d.configFile, '--config-dir', d.configDir, '--root', d.root, '--runroot', d.runroot, '--listen', d.socket],
          { encoding: 'utf8' },
        );
        if (!/restarted in place/.test(out)) throw new Error(`nodecri restart said: ${out}`);
      }
      env.client = new CriClient(env.daemon.socket);
    },
    async replaceDaemon(extraEnv) {
      env.client.close();
      const d = env.daemon;
      if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill('SIGKILL');
      await d.exited;
      env.daemon = await start(extraEnv);
      env.client = new CriClient(env.daemon.socket);
    },
    async removePods() {
      try {
        const pods = await env.client.call('ListPodSandbox', {});
        for (const p of pods.items) {
          await env.client.call('RemovePodSandbox', { pod_sandbox_id: p.id }).catch((e: { details?: string }) => {
            process.stderr.write(`pod-env cleanup: RemovePodSandbox ${p.id}: ${e.details ?? String(e)}\n`);
          });
        }
      } catch (e) {
        // the daemon is gone (or says why not)
        process.stderr.write(`pod-env cleanup: ListPodSandbox: ${(e as { details?: string }).details ?? String(e)}\n`);
      }
    },
    async cleanup() {
      await env.removePods();
      env.client.close();
      await env.daemon.cleanup();
      for (const d of cgroupDirsFor(cgroupParent)) {
        try {
          fs.rmdirSync(d);
        } catch {
          // not there
        }
      }
      cni.cleanup();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  env.client = new CriClient(env.daemon.socket);
  return env;
}

/**
 * Runs `body` in a fresh pod env and always cleans up. Unless the body failed, it then
 * asserts that nothing the runtime made is left: mounts, files under its pod and container
 * dirs and the CNI cache, cgroups, host links and IP allocations. With `removePods` the
 * pods the body left are removed through the API first (removal must leave nothing);
 * without it, the body must have removed them itself.
 */
export async function withPodEnv(opts: PodEnvOptions & { removePods?: boolean }, body: (env: PodEnv) => Promise<void>): Promise<void> {
  const env = await startPodEnv(opts);
  const scope: LeakScope = {
    mountPrefixes: [env.dir],
    dirs: ['run/sandboxes', 'root/sandboxes', 'root/cni-cache', 'run/containers', 'root/containers'].map((d) => path.join(env.dir, d)),
    cgroupDirs: cgroupDirsFor(env.cgroupParent),
  };
  const before = snapshot(scope);
  try {
    await body(env);
    if (opts.removePods) await env.removePods();
    const leaked = diff(before, snapshot(scope));
    // The daemon itself (after a restart, a new pid) is expected to be running.
    leaked.children = leaked.children.filter((c) => !c.startsWith(`${env.daemon.proc.pid} `));
    const links = bridgePorts(env.cni.bridge);
    assert.deepEqual({ ...leaked, links, ips: ipamAllocations(env.cni) }, { mounts: [], files: [], cgroups: [], children: [], links: [], ips: [] });
  } finally {
    await env.cleanup();
  }
}
