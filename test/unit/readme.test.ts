/** The README's config reference is `nodecri config --default`: keep them the same. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { defaultConfig, renderToml } from '../../src/config';

test('the README config reference matches the defaults', () => {
  const readme = fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const m = /<!-- config-reference:begin -->\n```toml\n([\s\S]*?)```\n<!-- config-reference:end -->/.exec(readme);
  assert.ok(m, 'README has the config reference markers');
  assert.equal(m[1], renderToml(defaultConfig()), 'regenerate it with: node dist/src/main.js config --default');
});
