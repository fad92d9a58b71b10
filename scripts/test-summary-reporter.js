// A node:test reporter that writes one file's totals as JSON ({ tests, pass, fail, ... }) for
// scripts/test.js, which adds them up over the files. The totals are the runner's own: the
// diagnostics it emits at the end of a run ("tests 12", "pass 11", ...).
'use strict';
const KEYS = ['tests', 'suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo'];

module.exports = async function* summary(source) {
  const counts = {};
  for await (const event of source) {
    if (event.type !== 'test:diagnostic' || event.data.nesting !== 0) continue;
    const m = /^(\w+) (\d+)$/.exec(event.data.message);
    if (m && KEYS.includes(m[1])) counts[m[1]] = Number(m[2]);
  }
  yield JSON.stringify(counts);
};
