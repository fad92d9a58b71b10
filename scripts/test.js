#!/usr/bin/env node
// Runs every compiled test file (dist/**/*.test.js) with node's built-in test runner.
// Node 20's --test takes no globs, so the files are listed here. Files run one at a time:
// the integration tests create real mounts, namespaces and cgroups, and a serial run keeps
// their leak checks meaningful. Extra arguments are passed to node (e.g. --test-name-pattern).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');

function find(dir, out) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) find(p, out);
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

if (!fs.existsSync(dist)) {
  console.error('dist/ is missing: run npm run build first');
  process.exit(2);
}
const args = process.argv.slice(2);
const filters = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));
let files = find(dist, []).sort();
if (filters.length > 0) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(2);
}
// A full run starts with the native core's own tests (no Node inside); their failure fails it.
if (filters.length === 0) {
  const n = spawnSync(process.execPath, [path.join(__dirname, 'native-tests.js')], { stdio: 'inherit', cwd: root });
  if (n.status !== 0) process.exit(n.status ?? 1);
}
// Every test gets a deadline, so that a hang fails its file instead of the whole run.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=300000', '--test-reporter=spec', ...flags, ...files], {
  stdio: 'inherit',
  cwd: root,
});
process.exit(r.status ?? 1);
