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

test("the README's source tree names every folder of src/ and native/, and nothing that is gone", () => {
  const root = path.resolve(__dirname, '..', '..', '..');
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const m = /## Source tree\n\n```\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has a source tree block');
  // Each entry is an indented name at the start of a line; its parent is the last shallower one.
  const listed: string[] = [];
  const stack: string[] = [];
  for (const line of m[1].split('\n')) {
    const e = /^( *)(\S+)/.exec(line);
    if (!e || line.length - line.trimStart().length > 20) continue; // a wrapped description
    const depth = e[1].length / 2;
    stack.length = depth;
    const full = path.posix.join(...stack, e[2]);
    listed.push(full.replace(/\/$/, ''));
    if (e[2].endsWith('/')) stack.push(e[2].replace(/\/$/, ''));
  }
  const missing = listed.filter((p) => !fs.existsSync(path.join(root, p)));
  assert.deepEqual(missing, [], 'entries of the source tree that do not exist');
  const folders = (dir: string) =>
    fs
      .readdirSync(path.join(root, dir), { withFileTypes: true })
      .filter((d) => d.isDirectory() && !(dir === 'src/cri' && d.name === 'generated'))
      .map((d) => `${dir}/${d.name}`);
  const unlisted = ['src', 'native'].flatMap(folders).filter((f) => !listed.includes(f));
  assert.deepEqual(unlisted, [], 'folders the source tree does not name');
});
