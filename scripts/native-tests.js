#!/usr/bin/env node
// Runs the native core's own tests (native/test/core_tests.cc): a plain executable built by
// `node-gyp rebuild` beside the addon, with no Node inside. Needs root (mounts, namespaces,
// cgroups, clones). `node scripts/native-tests.js [FILTER]` runs the tests whose name holds
// FILTER; NODECRI_CORE_STRESS=N sets the plain exec stress test's iterations (3000), and the
// joined and aborted ones' (a tenth of N each).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { spawn } = require('node:child_process');

if (process.getuid() !== 0) {
  // A developer's run without root (npm run test:unit): these tests need the kernel as root.
  console.log('native core tests need root: skipped');
  process.exit(0);
}
// Its absolute path: it finds nodecri-init beside itself through it.
const bin = path.resolve(__dirname, '..', 'build', 'Release', 'nodecri-core-tests');
if (!fs.existsSync(bin)) {
  console.error(`${bin} is missing: run npx node-gyp rebuild first`);
  process.exit(2);
}
console.log('native core tests');
// The binary's scratch dir, made here so that it is removed however the run ends (the
// binary's tmpfs on it lives in its own mount namespace and goes with it).
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-core-tests-'));
// Its own process group, so that a timeout or our own interruption kills it and every
// child of it that is still in the group, not the binary alone.
const child = spawn(bin, process.argv.slice(2), {
  stdio: 'inherit',
  detached: true,
  env: { ...process.env, NODECRI_CORE_SCRATCH: scratch },
});
const killGroup = () => {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
};
const timer = setTimeout(() => {
  console.error('native core tests: timed out after 600 s, killed');
  killGroup();
}, 600000);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, killGroup);
child.on('error', (err) => console.error(err.message));
child.on('close', (code) => {
  clearTimeout(timer);
  fs.rmSync(scratch, { recursive: true, force: true });
  process.exit(code ?? 1);
});
