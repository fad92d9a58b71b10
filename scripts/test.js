#!/usr/bin/env node
// Runs the compiled test files (dist/**/*.test.js) with node's built-in test runner, one file
// at a time: the integration tests create real mounts, namespaces and cgroups, and a serial
// run keeps their leak checks meaningful.
//
// Each file is its own `node --test` child with a deadline of its own (FILE_TIMEOUT_MS): node's
// --test-timeout bounds one test, but not a file's module code, its hooks, or a process that
// will not exit because something it started still holds the loop, and any of those would
// hang the whole run. The child gets its own process group, so that when the deadline passes
// the daemons the file started go with it (SIGTERM, then SIGKILL). The totals of all files are
// printed at the end, with the files that failed or hung.
//
// Usage: node scripts/test.js [--unit] [FILTER...] [NODE_FLAG...]
//   --unit     only the tests that need neither root nor the kernel: src/**/*.test.js and
//              test/unit/ (what `npm run test:unit` runs)
//   FILTER     keep the files whose path contains one of the substrings
//   NODE_FLAG  anything else starting with '-' is passed to node (e.g. --test-name-pattern=x)
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
const FILE_TIMEOUT_MS = Number(process.env.NODECRI_TEST_FILE_TIMEOUT_MS ?? 10 * 60_000);
const TEST_TIMEOUT_MS = 300_000;
const KILL_GRACE_MS = 10_000;

function find(dir, out) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) find(p, out);
    // A compiled test whose source is gone (deleted or renamed since the last build) is stale.
    else if (e.name.endsWith('.test.js') && fs.existsSync(path.join(root, path.relative(dist, p)).replace(/\.js$/, '.ts'))) out.push(p);
  }
  return out;
}

const isUnit = (f) => f.startsWith(path.join(dist, 'src') + path.sep) || f.startsWith(path.join(dist, 'test', 'unit') + path.sep);

/** The file running now, whose group an interrupt of this script must take down too. */
let current = null;
for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
]) {
  process.on(sig, () => {
    if (!current) process.exit(code);
    const pid = current.pid;
    const group = (s) => {
      try {
        process.kill(-pid, s);
      } catch {
        // already gone
      }
    };
    group('SIGTERM');
    setTimeout(() => {
      group('SIGKILL');
      process.exit(code);
    }, KILL_GRACE_MS).unref();
    current.once('exit', () => setTimeout(() => (group('SIGKILL'), process.exit(code)), 100));
  });
}

/**
 * The living processes of group `pgid`, as "pid (comm)". Zombies are left out: one whose
 * parent died went to init, whose to reap it is (this machine's init may never do it).
 */
function groupMembers(pgid) {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(`${name} (${stat.slice(stat.indexOf('(') + 1, close)})`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Kills what is left of group `pgid` and waits (up to KILL_GRACE_MS) until it is gone. */
async function killGroup(pgid) {
  const end = Date.now() + KILL_GRACE_MS;
  while (groupMembers(pgid).length > 0 && Date.now() < end) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs one file; resolves with its counts, or null when it produced none (crashed or hung). */
function runFile(file, flags, summaryFile) {
  return new Promise((resolve) => {
    fs.rmSync(summaryFile, { force: true });
    const args = [
      '--test',
      `--test-timeout=${TEST_TIMEOUT_MS}`,
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      `--test-reporter=${path.join(__dirname, 'test-summary-reporter.js')}`,
      `--test-reporter-destination=${summaryFile}`,
      ...flags,
      file,
    ];
    // stdin is not the terminal's: in a group of its own, a read of it would stop the file.
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: root, detached: true });
    current = child;
    let timedOut = false;
    let killTimer = null;
    const group = (signal) => {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // the group is already gone
      }
    };
    const deadline = setTimeout(() => {
      timedOut = true;
      console.error(`\n# ${path.relative(root, file)}: still running after ${FILE_TIMEOUT_MS / 1000} s, killing its process group`);
      group('SIGTERM');
      killTimer = setTimeout(() => group('SIGKILL'), KILL_GRACE_MS);
    }, FILE_TIMEOUT_MS);
    child.on('exit', async (code, signal) => {
      current = null;
      clearTimeout(deadline);
      if (killTimer) clearTimeout(killTimer);
      // The file's leftovers in its group (a daemon it did not stop) must not outlive it,
      // nor still hold mounts or cgroups when the next file takes its leak baseline.
      const left = groupMembers(child.pid);
      if (left.length > 0) {
        console.error(`# ${path.relative(root, file)} left processes in its group: ${left.join(', ')}; killing them`);
        await killGroup(child.pid);
      }
      let counts = null;
      try {
        counts = JSON.parse(fs.readFileSync(summaryFile, 'utf8'));
      } catch {
        // no summary: the runner died before its end
      }
      resolve({ code, signal, timedOut, counts });
    });
  });
}

async function main() {
  if (!fs.existsSync(dist)) {
    console.error('dist/ is missing: run npm run build first');
    process.exit(2);
  }
  const args = process.argv.slice(2);
  const unitOnly = args.includes('--unit');
  const filters = args.filter((a) => !a.startsWith('-'));
  const flags = args.filter((a) => a.startsWith('-') && a !== '--unit');
  let files = find(dist, []).sort();
  if (unitOnly) files = files.filter(isUnit);
  if (filters.length > 0) files = files.filter((f) => filters.some((x) => f.includes(x)));
  if (files.length === 0) {
    console.error('no test files found');
    process.exit(2);
  }
  // A full run starts with the native core's own tests (no Node inside); their failure fails it.
  if (filters.length === 0 && !unitOnly) {
    const n = spawnSync(process.execPath, [path.join(__dirname, 'native-tests.js')], { stdio: 'inherit', cwd: root });
    if (n.status !== 0) process.exit(n.status ?? 1);
  }
  const summaryFile = path.join(os.tmpdir(), `nodecri-test-summary-${process.pid}.json`);
  const total = { tests: 0, pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
  const failedFiles = [];
  const started = Date.now();
  for (const file of files) {
    const rel = path.relative(root, file);
    console.log(`\n# ${rel}`);
    const r = await runFile(file, flags, summaryFile);
    if (r.counts) for (const k of Object.keys(total)) total[k] += r.counts[k] ?? 0;
    if (r.timedOut) failedFiles.push(`${rel} (killed after ${FILE_TIMEOUT_MS / 1000} s)`);
    else if (r.code !== 0) failedFiles.push(`${rel} (exit ${r.code ?? r.signal})`);
    // A file that failed without a failing test (it crashed, or hung) counts as one failure.
    if ((r.timedOut || r.code !== 0) && (r.counts?.fail ?? 0) + (r.counts?.cancelled ?? 0) === 0) total.fail++;
  }
  fs.rmSync(summaryFile, { force: true });
  console.log(`\n# ${files.length} files, ${total.tests} tests in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (total.cancelled + total.skipped + total.todo > 0) console.log(`# cancelled ${total.cancelled}, skipped ${total.skipped}, todo ${total.todo}`);
  for (const f of failedFiles) console.log(`# failed: ${f}`);
  console.log(`${total.pass} passed, ${total.fail + total.cancelled} failed`);
  process.exit(failedFiles.length > 0 ? 1 : 0);
}

void main();
