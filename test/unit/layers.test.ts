/**
 * The layer rule of issue 10: src/cri/ (gRPC and the CRI's wire types) sits over the
 * domain, and nothing below it reaches up. (a) No source file outside src/cri/ and the
 * composition root imports from src/cri/. (b) The domain type-checks on its own
 * (tsconfig.domain.json): no src/cri/ file, so none of the generated proto types, is part
 * of its program. The two differ: (a) reads import lines, (b) whatever the compiler
 * follows (an `import type`, a `typeof import(...)`, a re-export).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(__dirname, '..', '..', '..');
const src = path.join(root, 'src');
const cri = path.join(src, 'cri');
/** Where the CRI layer is wired in: the daemon, the CLI and the CLI's CRI client. */
const compositionRoot = ['daemon.ts', 'main.ts', 'restart.ts'].map((f) => path.join(src, f));

function sources(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const importRe = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;

test('no file below src/cri/ imports from it (outside the composition root)', () => {
  const offenders: string[] = [];
  for (const file of sources(src)) {
    if (file.startsWith(`${cri}${path.sep}`) || compositionRoot.includes(file)) continue;
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(importRe)) {
      const spec = m[1]!;
      if (!spec.startsWith('.')) continue;
      const target = path.resolve(path.dirname(file), spec);
      if (target === cri || target.startsWith(`${cri}${path.sep}`)) {
        const line = text.slice(0, m.index).split('\n').length;
        offenders.push(`${path.relative(root, file)}:${line}: ${spec}`);
      }
    }
  }
  assert.deepEqual(offenders, [], `imports of src/cri/ below it:\n  ${offenders.join('\n  ')}`);
});

test('the domain type-checks without src/cri/ (tsconfig.domain.json)', { timeout: 240_000 }, () => {
  const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
  // Incremental into a temp file: a second run re-checks only what changed.
  const buildInfo = path.join(os.tmpdir(), `nodecri-domain-${Buffer.from(root).toString('hex').slice(-16)}.tsbuildinfo`);
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.domain.json'), '--listFiles', '--incremental', '--tsBuildInfoFile', buildInfo], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(r.status, 0, `tsc -p tsconfig.domain.json failed:\n${r.stdout}${r.stderr}`);
  const reached = r.stdout
    .split('\n')
    .map((l) => path.resolve(root, l.trim()))
    .filter((f) => f.startsWith(`${cri}${path.sep}`));
  assert.deepEqual(
    reached.map((f) => path.relative(root, f)),
    [],
    'the domain program reaches src/cri/',
  );
  // The program really is the domain: the container module and the OCI generator are in it.
  const files = new Set(r.stdout.split('\n').map((l) => path.resolve(root, l.trim())));
  for (const f of ['src/container/service.ts', 'src/oci/generate.ts', 'src/sandbox/service.ts']) assert.ok(files.has(path.join(root, f)), f);
});
