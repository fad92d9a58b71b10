#!/usr/bin/env node
// Runs the native core's own tests (native/test/core_tests.cc): a plain executable built by
// `node-gyp rebuild` beside the addon, with no Node inside. Needs root (mounts, namespaces,
// cgroups, clones). `node scripts/native-tests.js [FILTER]` runs the tests whose name holds
// FILTER; NODECRI_CORE_STRESS=N sets the exec stress test's iterations (3000).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

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
const r = spawnSync(bin, process.argv.slice(2), { stdio: 'inherit', timeout: 600000 });
if (r.error) console.error(r.error.message);
process.exit(r.status ?? 1);
