/**
 * Starts a real daemon process for a test: its own temp root, run dir, socket and config
 * dir (so that nothing on the host's /etc/nodecri is read), waits for its ready line, and
 * always cleans up. Log lines (JSON) are collected for assertions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { adoptStarted, processStartTime, releaseProcess } from '../../src/native/process';

export const mainJs = path.resolve(__dirname, '..', '..', 'src', 'main.js');

export interface TestDaemon {
  dir: string;
  root: string;
  runroot: string;
  socket: string;
  configFile: string;
  configDir: string;
  /** the process the test started: nodecri-keeper, or the daemon itself without one */
  proc: ChildProcess;
  /**
   * The pid of the daemon that serves (the keeper's worker; proc.pid without a keeper), as
   * its latest ready line says.
   */
  readonly workerPid: number;
  logs: Record<string, unknown>[];
  stderr: () => string;
  /** The address /metrics is served on, when metrics were enabled. */
  metricsAddress: string | null;
  /** Resolves with the exit code (or signal) once the process and its worker are gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Stops the daemon (SIGTERM, then SIGKILL after 10 s) and removes its temp dir. */
  cleanup(): Promise<void>;
}

export interface StartOptions {
  /** extra CLI flags */
  args?: string[];
  /** content of the main config file ("" by default) */
  config?: string;
  /** drop-in files by name */
  dropIns?: Record<string, string>;
  /** reuse this temp dir (e.g. a second daemon on the same socket) */
  dir?: string;
  /** resolve as soon as the process exits instead of waiting for ready (expecting failure) */
  expectFailure?: boolean;
  env?: NodeJS.ProcessEnv;
  /** node flags before the script, e.g. --cpu-prof (NODECRI_NODE_ARGS adds to them) */
  nodeArgs?: string[];
  /** set `root` in the main config file (first line) instead of by --root, so that the file can change it */
  rootInConfig?: boolean;
}

export function makeTempDir(prefix = 'nodecri-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startTestDaemon(opts: StartOptions = {}): Promise<TestDaemon> {
  const dir = opts.dir ?? makeTempDir();
  const root = path.join(dir, 'root');
  const runroot = path.join(dir, 'run');
  const socket = path.join(runroot, 'nodecri.sock');
  const configFile = path.join(dir, 'nodecri.toml');
  const configDir = path.join(dir, 'nodecri.d');
  fs.mkdirSync(configDir, { recursive: true });
  fs.writeFileSync(configFile, `${opts.rootInConfig ? `root = "${root}"\n` : ''}${opts.config ?? ''}`);
  for (const [name, text] of Object.entries(opts.dropIns ?? {})) fs.writeFileSync(path.join(configDir, name), text);
  const args = [
    ...(opts.nodeArgs ?? []),
    ...(process.env.NODECRI_NODE_ARGS ? process.env.NODECRI_NODE_ARGS.split(' ') : []),
    mainJs,
    'daemon',
    '--config',
    configFile,
    '--config-dir',
    configDir,
    ...(opts.rootInConfig ? [] : ['--root', root]),
    '--runroot',
    runroot,
    '--listen',
    socket,
    '--cni-config-dir',
    path.join(dir, 'cni'),
    ...(opts.args ?? []),
  ];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  const logs: Record<string, unknown>[] = [];
  let stderrText = '';
  let pending = '';
  let onLine: ((l: Record<string, unknown>) => void) | null = null;
  proc.stderr!.on('data', (chunk: Buffer) => {
    stderrText += chunk.toString();
    pending += chunk.toString();
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    for (const p of parts) {
      try {
        const l = JSON.parse(p) as Record<string, unknown>;
        logs.push(l);
        watchReady(l);
        onLine?.(l);
      } catch {
        // not a log line (e.g. a start-up error message)
      }
    }
  });
  proc.stdout!.resume();
  // The worker a killed keeper takes with it (PR_SET_PDEATHSIG) dies a moment later: a
  // test that starts the next daemon on the same root waits for both.
  let worker: { pid: number; startTime: Promise<string | null> } | null = null;
  const workerGone = async () => {
    if (!worker || worker.pid === proc.pid) return;
    const startTime = await worker.startTime;
    const h = await adoptStarted(worker.pid, startTime);
    if (h) {
      await h.exited;
      await releaseProcess(h);
    }
    // Exited is not reaped: init reaps the orphan a moment later, and until then its pid
    // still looks alive (kill(pid, 0)) to the next daemon's clean-ups. No event says so.
    for (let i = 0; i < 1000 && (await processStartTime(worker.pid)) === startTime; i++) await new Promise((r) => setTimeout(r, 10));
  };
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => void workerGone().then(() => resolve({ code, signal }))),
  );
  const watchReady = (l: Record<string, unknown>) => {
    if (typeof l.msg === 'string' && l.msg.startsWith('nodecri ready') && typeof l.pid === 'number') {
      worker = { pid: l.pid, startTime: processStartTime(l.pid) };
    }
  };
  let metricsAddress: string | null = null;
  const daemon: TestDaemon = {
    dir,
    root,
    runroot,
    socket,
    configFile,
    configDir,
    proc,
    logs,
    stderr: () => stderrText,
    get workerPid() {
      return worker?.pid ?? proc.pid!;
    },
    get metricsAddress() {
      return metricsAddress;
    },
    exited,
    async cleanup() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      if (!opts.dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  if (opts.expectFailure) {
    await exited;
    return daemon;
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon not ready after 20 s:\n${stderrText}`)), 20_000);
    const check = (l: Record<string, unknown>) => {
      if (typeof l.msg === 'string' && l.msg.startsWith('nodecri ready')) {
        metricsAddress = (l.metrics as string | null) ?? null;
        clearTimeout(timer);
        resolve();
      }
    };
    logs.forEach(check);
    onLine = check;
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited (${code ?? signal}) before ready:\n${stderrText}`));
    });
  }).catch(async (e: unknown) => {
    await daemon.cleanup();
    throw e;
  });
  return daemon;
}
