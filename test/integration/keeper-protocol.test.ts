/**
 * nodecri-keeper's protocol and signals, with a stand-in worker (a small Node script that
 * sends the frames a test asks for on stdin) instead of the daemon; and the worker's side
 * (KeeperLink) waiting for an exit whose note never comes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir } from '../helpers/daemon';
import { childrenOf } from '../helpers/leaks';
import { until } from '../helpers/containers';
import { keeperBinary } from '../../src/native/keeper';
import { KeeperLink, keeperFdVar, exitsDir } from '../../src/linux/keeper';
import { createLogger } from '../../src/obs/logger';

const nativeKeeperJs = path.resolve(__dirname, '..', '..', 'src', 'native', 'keeper.js');
const linkJs = path.resolve(__dirname, '..', '..', 'src', 'linux', 'keeper.js');

// Reads JSON lines on stdin: {type, payload, file?} -> one frame (with file opened and its
// fd attached), answered "sent". Handles SIGQUIT by printing "quit", for the forwarding test.
const workerScript = `
const fs = require('node:fs');
const readline = require('node:readline');
const { sendToKeeper } = require(${JSON.stringify(nativeKeeperJs)});
const sock = Number(process.env.NODECRI_KEEPER_FD);
const frame = (type, payload) => {
  const b = Buffer.from(payload);
  const h = Buffer.alloc(8);
  h.writeUInt32LE(type, 0);
  h.writeUInt32LE(b.length, 4);
  return Buffer.concat([h, b]);
};
process.on('SIGQUIT', () => process.stdout.write('quit\\n'));
let link = null;
readline.createInterface({ input: process.stdin }).on('line', (l) => {
  const m = JSON.parse(l);
  if (m.orphan) {
    // A process re-parented to the keeper (its parent shell exits at once): it exits 3 once
    // m.orphan exists.
    const r = require('node:child_process').execFileSync('sh', ['-c', 'sh -c "while [ ! -e ' + m.orphan + ' ]; do sleep 0.02; done; exit 3" >/dev/null 2>&1 & echo $!']);
    process.stdout.write('orphan ' + String(r).trim() + '\\n');
    return;
  }
  if (m.flood) {
    // Through KeeperLink, as the daemon sends: many drops, then a hold of m.file.
    link ??= require(${JSON.stringify(linkJs)}).KeeperLink.fromEnv(m.runroot, { error: (o, msg) => process.stdout.write('link error ' + msg + '\\n') });
    for (let i = 0; i < m.flood; i++) link.drop('nothing-' + i);
    const fd = fs.openSync(m.file, 'r');
    link.hold('b', 'stdout', fd);
    fs.closeSync(fd);
    process.stdout.write('sent\\n');
    return;
  }
  const fd = m.file ? fs.openSync(m.file, 'r') : null;
  sendToKeeper(sock, frame(m.type, m.payload ?? ''), fd);
  if (fd !== null) fs.closeSync(fd);
  process.stdout.write('sent\\n');
});
process.stdout.write('up\\n');
`;

interface Keeper {
  proc: ChildProcess;
  dir: string;
  logs: Record<string, unknown>[];
  out: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  send(m: { type: number; payload?: string; file?: string; flood?: number; runroot?: string; orphan?: string }): Promise<void>;
  /** the files the keeper process has open, by path */
  openFiles(): string[];
}

interface KeeperOpts {
  /** the worker's argv after node (the stand-in worker's script by default) */
  workerArgs?: string[];
  /** runs first, with the temp dir */
  before?: (dir: string) => void;
  /** the keeper's fd limit (soft and hard) */
  nofile?: number;
}

async function withKeeper(opts: KeeperOpts, fn: (k: Keeper) => Promise<void>): Promise<void> {
  const dir = makeTempDir('nodecri-keeper-');
  opts.before?.(dir);
  const script = path.join(dir, 'worker.js');
  fs.writeFileSync(script, workerScript);
  const keeperArgs = [path.join(dir, 'exits'), process.execPath, 'node', ...(opts.workerArgs ?? [script])];
  // (prlimit execs the keeper: the same pid)
  const proc = opts.nofile
    ? spawn('prlimit', [`--nofile=${opts.nofile}:${opts.nofile}`, keeperBinary(), ...keeperArgs], { stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(keeperBinary(), keeperArgs, { stdio: ['pipe', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  const out: string[] = [];
  let errText = '';
  proc.stderr!.on('data', (c: Buffer) => {
    errText += c.toString();
    const parts = errText.split('\n');
    errText = parts.pop() ?? '';
    for (const p of parts) {
      try {
        logs.push(JSON.parse(p) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  let outText = '';
  proc.stdout!.on('data', (c: Buffer) => {
    outText += c.toString();
    const parts = outText.split('\n');
    outText = parts.pop() ?? '';
    out.push(...parts);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const k: Keeper = {
    proc,
    dir,
    logs,
    out,
    exited,
    async send(m) {
      const done = (l: string) => l === 'sent' || l.startsWith('orphan ');
      const before = out.filter(done).length;
      proc.stdin!.write(`${JSON.stringify(m)}\n`);
      await until('the stand-in worker to send', async () => out.filter(done).length > before);
    },
    openFiles() {
      const fdDir = `/proc/${proc.pid}/fd`;
      const r: string[] = [];
      for (const n of fs.readdirSync(fdDir)) {
        try {
          r.push(fs.readlinkSync(path.join(fdDir, n)));
        } catch {
          // closed meanwhile
        }
      }
      return r;
    },
  };
  try {
    await fn(k);
  } finally {
    // The keeper's worker and the orphans it was given outlive a kill -9 of the keeper (they
    // go to init): they are found first and killed after it, and are gone before the next test.
    const descendants = proc.pid === undefined ? [] : descendantsOf(proc.pid);
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
    for (const pid of descendants) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await until("the keeper's worker and orphans gone", async () => descendants.every((pid) => !fs.existsSync(`/proc/${pid}`) || /^Z/.test(processState(pid))));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Every living descendant of `pid`, children first. */
function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  for (const c of childrenOf(pid)) out.push(c.pid, ...descendantsOf(c.pid));
  return out;
}

/** The state letter of `pid` (R, S, Z...), or "" when it is gone. */
function processState(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return '';
  }
}

const workerStarted = (k: Keeper) => k.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('keeper started the daemon worker'));

test('an fd attached to a frame that takes none is closed, not handed to the next hold', async () => {
  await withKeeper({}, async (k) => {
    await until('the stand-in worker up', async () => k.out.includes('up'));
    const extra = path.join(k.dir, 'extra');
    const b = path.join(k.dir, 'b-stdout');
    fs.writeFileSync(extra, '');
    fs.writeFileSync(b, '');
    // A drop frame with an fd it does not take, then a hold of b's file, then a drop of b.
    await k.send({ type: 2, payload: 'x', file: extra });
    await k.send({ type: 1, payload: 'b/stdout', file: b });
    await until('the keeper to hold b', async () => k.openFiles().includes(b));
    await k.send({ type: 2, payload: 'b' });
    // A frame the keeper handles after the drop: once it has been read, so has the drop.
    await k.send({ type: 1, payload: 'c/stdout', file: extra });
    await until('the keeper to hold c', async () => k.openFiles().includes(extra));
    assert.ok(!k.openFiles().includes(b), 'b is no longer held after its drop');
    assert.equal(k.openFiles().filter((f) => f === extra).length, 1, 'only c holds the extra file');
  });
});

test('frames the socket does not take at once wait in order and go when the keeper reads again (the fd of a hold among them too)', async () => {
  await withKeeper({}, async (k) => {
    await until('the stand-in worker up', async () => k.out.includes('up'));
    const b = path.join(k.dir, 'b-stdout');
    fs.writeFileSync(b, '');
    // A stopped keeper reads nothing: the socket fills and sends get EAGAIN.
    k.proc.kill('SIGSTOP');
    try {
      await k.send({ type: 0, flood: 5000, runroot: k.dir, file: b });
    } finally {
      k.proc.kill('SIGCONT');
    }
    assert.ok(!k.out.some((l) => l.startsWith('link error')), k.out.join('\n'));
    await until('the keeper to hold b', async () => k.openFiles().includes(b));
  });
});

test('temporary record files left by a dead writer are removed when the keeper starts', async () => {
  let stale = '';
  const before = (dir: string) => {
    fs.mkdirSync(path.join(dir, 'exits'));
    stale = path.join(dir, 'exits', '.12-56.tmp');
    fs.writeFileSync(stale, '{');
    fs.writeFileSync(path.join(dir, 'exits', '12-34'), '{}');
  };
  await withKeeper({ before }, async (k) => {
    await until('the worker started', async () => workerStarted(k));
    assert.ok(!fs.existsSync(stale));
    assert.ok(fs.existsSync(path.join(k.dir, 'exits', '12-34')), 'records stay');
  });
});

test('the keeper writes exit records only for the processes the worker registered; other orphans are reaped without one', async () => {
  await withKeeper({}, async (k) => {
    await until('the stand-in worker up', async () => k.out.includes('up'));
    const go = path.join(k.dir, 'go');
    const pids: number[] = [];
    for (let i = 0; i < 2; i++) {
      await k.send({ type: 0, orphan: go });
      pids.push(
        Number(
          k.out
            .filter((l) => l.startsWith('orphan '))
            .at(-1)!
            .slice(7),
        ),
      );
    }
    const startOf = (pid: number) => fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[19];
    const [watched, other] = pids;
    const start = startOf(watched);
    const otherStart = startOf(other);
    await k.send({ type: 6, payload: `${watched} ${start}` });
    fs.writeFileSync(go, '');
    await until('both orphans reaped', async () => pids.every((p) => !fs.existsSync(`/proc/${p}`)));
    const exits = path.join(k.dir, 'exits');
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(exits, `${watched}-${start}`), 'utf8')), { pid: watched, startTime: start, exitCode: 3, signal: null });
    assert.ok(!fs.existsSync(path.join(exits, `${other}-${otherStart}`)), 'no record for an orphan nobody registered');
  });
});

test('at its fd limit (every fd held for containers) the keeper still records a watched exit', async () => {
  await withKeeper({ nofile: 128 }, async (k) => {
    await until('the stand-in worker up', async () => k.out.includes('up'));
    const go = path.join(k.dir, 'go');
    await k.send({ type: 0, orphan: go });
    const pid = Number(
      k.out
        .filter((l) => l.startsWith('orphan '))
        .at(-1)!
        .slice(7),
    );
    const start = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[19];
    await k.send({ type: 6, payload: `${pid} ${start}` });
    // Holds until an fd no longer fits in the keeper's table.
    const file = path.join(k.dir, 'held');
    fs.writeFileSync(file, '');
    const full = () => k.logs.some((l) => typeof l.msg === 'string' && /cut off/.test(l.msg));
    for (let i = 0; i < 200 && !full(); i++) {
      await k.send({ type: 1, payload: `c${i}/stdout`, file });
      // (each one read before the next: the log line names the first that did not fit)
      await until('the keeper to take the hold', async () => full() || k.openFiles().filter((f) => f === file).length > i);
    }
    assert.ok(full(), 'the keeper ran out of fds');
    fs.writeFileSync(go, '');
    await until('the orphan reaped', async () => !fs.existsSync(`/proc/${pid}`));
    const record = path.join(k.dir, 'exits', `${pid}-${start}`);
    assert.ok(fs.existsSync(record), 'the exit record was written');
    assert.equal(JSON.parse(fs.readFileSync(record, 'utf8')).exitCode, 3);
  });
});

test('SIGALRM (and every signal the keeper does not pass on) leaves the keeper and its worker running; SIGQUIT reaches a ready worker', async () => {
  await withKeeper({}, async (k) => {
    await until('the stand-in worker up', async () => k.out.includes('up'));
    await k.send({ type: 5 }); // ready: it has its handlers
    for (const sig of ['SIGALRM', 'SIGVTALRM', 'SIGPWR'] as const) {
      k.proc.kill(sig);
      await until(`the keeper to read ${sig} (or die of it)`, async () => k.proc.exitCode !== null || k.proc.signalCode !== null || k.logs.some((l) => l.msg === 'signal ignored'));
      assert.equal(k.proc.signalCode, null, `the keeper died of ${sig}`);
      k.logs.length = 0;
    }
    k.proc.kill('SIGQUIT');
    await until('the worker to get SIGQUIT (or the keeper to die of it)', async () => k.out.includes('quit') || k.proc.signalCode !== null);
    assert.equal(k.proc.signalCode, null);
    assert.ok(k.out.includes('quit'));
  });
});

test('a SIGTERM that kills the worker before it has a handler is still a requested stop: the keeper exits 0', async () => {
  // A worker with no SIGTERM handler at all: dies of the forwarded signal, as Node does
  // before its handler is in place.
  await withKeeper({ workerArgs: ['-e', 'setInterval(() => {}, 1 << 30)'] }, async (k) => {
    await until('the worker started', async () => workerStarted(k));
    k.proc.kill('SIGTERM');
    const { code, signal } = await k.exited;
    assert.deepEqual({ code, signal }, { code: 0, signal: null });
  });
});

test('exitOf settles from the exit record when no note comes', async () => {
  const dir = makeTempDir('nodecri-keeper-link-');
  // Stands in for the socket: a FIFO (read-write, so it never ends) on which nothing comes.
  const fifo = path.join(dir, 'sock');
  execFileSync('mkfifo', [fifo]);
  const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  process.env[keeperFdVar] = String(fd);
  try {
    const link = KeeperLink.fromEnv(dir, createLogger('fatal'))!;
    assert.ok(link);
    const waiting = link.exitOf(4242, '123456');
    // The record appears after the wait began (written whole, by rename, as the keeper does).
    fs.mkdirSync(exitsDir(dir), { recursive: true });
    const tmp = path.join(exitsDir(dir), '.4242-123456.tmp');
    fs.writeFileSync(tmp, JSON.stringify({ pid: 4242, startTime: '123456', exitCode: 7, signal: null }));
    fs.renameSync(tmp, path.join(exitsDir(dir), '4242-123456'));
    assert.deepEqual(await waiting, { exitCode: 7, signal: null });
    link.close();
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
