/**
 * The command line on a machine where the addon is not built, and as a user who is not
 * root. The package is copied (dist/src, package.json, proto; node_modules linked) to a
 * temp dir without build/, so the addon cannot load there: no switch in the product code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Compiled to dist/test/unit/cli.test.js: three levels under the package root.
const repo = path.resolve(__dirname, '..', '..', '..');
const nobody = 65534;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], opts: { cwd: string; uid?: number; gid?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    // A process switched to another user cannot write to c8's coverage dir (NODE_V8_COVERAGE
    // names one of root's; node says so on stderr at exit, and puts the variable back if it is
    // only deleted): it writes to a dir of its own, moved into c8's once it has exited.
    const env = { ...process.env };
    const coverage = opts.uid !== undefined ? (process.env.NODE_V8_COVERAGE ?? null) : null;
    const ownCoverage = coverage ? fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-cli-coverage-')) : null;
    if (ownCoverage) {
      fs.chownSync(ownCoverage, opts.uid!, opts.gid ?? opts.uid!);
      env.NODE_V8_COVERAGE = ownCoverage;
    }
    const collect = () => {
      if (!coverage || !ownCoverage) return;
      for (const f of fs.readdirSync(ownCoverage)) fs.copyFileSync(path.join(ownCoverage, f), path.join(coverage, f));
      fs.rmSync(ownCoverage, { recursive: true, force: true });
    };
    const child = spawn(process.execPath, args, { cwd: opts.cwd, uid: opts.uid, gid: opts.gid, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      collect();
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('nodecri CLI without the addon', { timeout: 120_000 }, () => {
  let dir = '';
  let main = '';

  before(() => {
    // 0755 all the way down, so that the non-root case can read it too.
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-cli-'));
    fs.chmodSync(dir, 0o755);
    fs.cpSync(path.join(repo, 'dist', 'src'), path.join(dir, 'dist', 'src'), { recursive: true });
    fs.cpSync(path.join(repo, 'proto'), path.join(dir, 'proto'), { recursive: true });
    fs.copyFileSync(path.join(repo, 'package.json'), path.join(dir, 'package.json'));
    fs.symlinkSync(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'));
    main = path.join(dir, 'dist', 'src', 'main.js');
    assert.equal(fs.existsSync(path.join(dir, 'build')), false);
  });

  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('every module of dist/src imports without loading the addon', async () => {
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.js') && !e.name.endsWith('.test.js') && p !== main) files.push(p);
      }
    };
    walk(path.join(dir, 'dist', 'src'));
    assert.ok(files.length > 50, `only ${files.length} modules found`);
    // One process requires them all; a module that loads the addon at import throws there
    // (it is not in the copy), and the child names it. It exits at once: some modules
    // start nothing but keep handles (none should, but the test is about loading).
    const script = `for (const f of ${JSON.stringify(files)}) { try { require(f); } catch (e) { console.error(f + ': ' + e.message.split('\\n')[0]); process.exit(1); } } process.exit(0);`;
    const r = await run(['-e', script], { cwd: dir });
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
  });

  test('--help prints the commands', async () => {
    const r = await run([main, '--help'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: nodecri/);
    for (const c of ['daemon', 'restart', 'version', 'config', 'image']) assert.match(r.stdout, new RegExp(`^  ${c}\\b`, 'm'));
    assert.equal(r.stderr, '');
  });

  test('config --default prints the default configuration', async () => {
    const r = await run([main, 'config', '--default'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^root = "\/var\/lib\/nodecri"$/m);
    assert.match(r.stdout, /^runroot = "\/run\/nodecri"$/m);
    assert.equal(r.stderr, '');
  });

  test('version says the addon is missing, without a stack', async () => {
    const r = await run([main, 'version'], { cwd: dir });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^nodecri \S+\naddon missing\nCRI runtime\.v1\n$/);
    assert.match(r.stderr, /^nodecri: cannot load the nodecri addon \(run npm run build:native\); tried:\n/);
    assert.ok(r.stderr.includes(path.join(dir, 'build', 'Release', 'nodecri.node')), r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('daemon as root says the addon cannot load, without a stack', { skip: process.getuid?.() !== 0 && 'needs root' }, async () => {
    const state = path.join(dir, 'state');
    const r = await run([main, 'daemon', '--root', path.join(state, 'root'), '--runroot', path.join(state, 'run'), '--listen', path.join(state, 'run', 'nodecri.sock')], {
      cwd: dir,
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^nodecri: cannot load the nodecri addon/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  // As root (CI), the case switches to uid 65534; as a developer, it is the user already.
  const asNonRoot = process.getuid?.() === 0 ? { uid: nobody, gid: nobody } : {};

  test('daemon as a non-root user says it must run as root', async () => {
    const r = await run([main, 'daemon'], { cwd: dir, ...asNonRoot });
    assert.equal(r.signal, null);
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr, 'nodecri must run as root\n');
    assert.equal(r.stdout, '');
  });

  test('restart as a non-root user says it must run as root', async () => {
    const r = await run([main, 'restart'], { cwd: dir, ...asNonRoot });
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr, 'nodecri must run as root\n');
  });
});
