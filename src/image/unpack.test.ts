import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildTar, readTar, type TarWriteEntry } from './tar';
import { layerPath, unpackLayer, whiteoutOf } from './unpack';

test('whiteout names map to overlay actions', () => {
  assert.deepEqual(whiteoutOf('etc/.wh.passwd'), { kind: 'whiteout', path: 'etc/passwd' });
  assert.deepEqual(whiteoutOf('.wh.tmp'), { kind: 'whiteout', path: 'tmp' });
  assert.deepEqual(whiteoutOf('var/lib/.wh..wh..opq'), { kind: 'opaque', dir: 'var/lib' });
  assert.deepEqual(whiteoutOf('.wh..wh..opq'), { kind: 'opaque', dir: '' });
  assert.deepEqual(whiteoutOf('.wh..wh.plnk/123'), null);
  assert.deepEqual(whiteoutOf('a/.wh..wh.aufs'), { kind: 'ignore' });
  assert.deepEqual(whiteoutOf('a/.wh..wh..opqx'), { kind: 'ignore' });
  assert.deepEqual(whiteoutOf('a/.wh....'), { kind: 'whiteout', path: 'a/...' });
  assert.equal(whiteoutOf('etc/passwd'), null);
  assert.equal(whiteoutOf('etc/x.wh.y'), null);
});

test('whiteouts that name no file (the directory itself or its parent) are refused', () => {
  for (const rel of ['.wh.', 'a/.wh.', '.wh..', 'a/b/.wh..', '.wh...', 'a/.wh...']) {
    assert.throws(() => whiteoutOf(rel), new RegExp(`refusing layer: whiteout ${JSON.stringify(rel).replace(/\./g, '\\.')} names no file`), rel);
  }
});

test('layer paths are normalized and may not climb out', () => {
  assert.equal(layerPath('./a//b/'), 'a/b');
  assert.equal(layerPath('/etc/passwd'), 'etc/passwd');
  assert.equal(layerPath('./'), '');
  assert.throws(() => layerPath('../escape'), /refusing layer: .*"\.\.\/escape"/);
  assert.throws(() => layerPath('a/../../b'), /\.\./);
});

// Unpacking for real (device nodes for whiteouts, owners) needs root.
const asRoot = { skip: process.getuid?.() === 0 ? false : 'needs root' };

type Entry = TarWriteEntry & { data?: Buffer };

/** Unpacks `entries` into a fresh layer dir beside a "host" dir; returns the error, if any. */
async function unpackBeside(entries: (host: string) => Entry[], check: (dirs: { dest: string; host: string }, err: unknown) => void): Promise<void> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-unpack-'));
  try {
    const host = path.join(base, 'host');
    const dest = path.join(base, 'layer', 'diff');
    fs.mkdirSync(host);
    fs.mkdirSync(dest, { recursive: true });
    fs.writeFileSync(path.join(host, 'victim'), 'host file\n');
    const tar = buildTar(entries(host));
    let err: unknown = null;
    try {
      await unpackLayer(
        readTar(
          (async function* () {
            yield tar;
          })(),
        ),
        dest,
      );
    } catch (e) {
      err = e;
    }
    check({ dest, host }, err);
    assert.deepEqual(fs.readdirSync(host), ['victim'], 'the host dir is untouched');
    assert.equal(fs.readFileSync(path.join(host, 'victim'), 'utf8'), 'host file\n');
    assert.equal(fs.statSync(path.join(host, 'victim')).nlink, 1);
    assert.ok(fs.lstatSync(dest).isDirectory(), 'the layer root is still a directory');
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

const file = (name: string): Entry => ({ name, type: 'file', data: Buffer.from('x\n') });
const chain = (levels: number): Entry[] => {
  const e: Entry[] = [
    { name: 'x/', type: 'directory' },
    { name: 'x/l1', type: 'symlink', linkname: '..' },
  ];
  for (let k = 2; k <= levels; k++) e.push({ name: `x/l${k}`, type: 'symlink', linkname: `l${k - 1}/..` });
  return e;
};
const refused = (pattern: RegExp) => (_: unknown, err: unknown) => {
  assert.ok(err instanceof Error, 'refused');
  assert.match(err.message, pattern);
};

test('unpack: an absolute symlink and a file, a dir or a whiteout through it are refused', asRoot, async () => {
  for (const through of [file('evil/pwned'), { name: 'evil/d/', type: 'directory' } as Entry, file('evil/.wh.victim'), file('evil/d/.wh..wh..opq')]) {
    await unpackBeside((host) => [{ name: 'evil', type: 'symlink', linkname: host }, through], refused(/goes through the symlink "evil"/));
  }
});

test('unpack: relative symlink chains, each climbing one real level, are refused', asRoot, async () => {
  const levels = 12;
  await unpackBeside((host) => [...chain(levels), file(`x/l${levels}${host}/pwned`)], refused(new RegExp(`goes through the symlink "x/l${levels}"`)));
  // A symlink may point anywhere (it is the container's business); it is never followed.
  await unpackBeside(
    () => chain(levels),
    (d, err) => {
      assert.equal(err, null);
      assert.equal(fs.readlinkSync(path.join(d.dest, `x/l${levels}`)), `l${levels - 1}/..`);
    },
  );
});

test('unpack: hard links to files outside, through symlinks, or to the layer root are refused', asRoot, async () => {
  await unpackBeside(
    (host) => [{ name: 'h', type: 'link', linkname: path.join(host, 'victim') }],
    refused(/hard link "h" points to ".*victim", which is not a file of this layer/),
  );
  await unpackBeside((host) => [...chain(12), { name: 'h', type: 'link', linkname: `x/l12${host}/victim` }], refused(/which is not a file of this layer/));
  await unpackBeside(
    (host) => [
      { name: 's', type: 'symlink', linkname: host },
      { name: 'h', type: 'link', linkname: 's/victim' },
    ],
    refused(/which is not a file of this layer/),
  );
  await unpackBeside(() => [{ name: 'h', type: 'link', linkname: './' }], refused(/which is not a file of this layer/));
  await unpackBeside(() => [{ name: 'h', type: 'link', linkname: '../host/victim' }], refused(/has a "\.\." component/));
  // A hard link to a symlink is that symlink: nothing goes through it either.
  await unpackBeside(
    (host) => [{ name: 's', type: 'symlink', linkname: host }, { name: 'h', type: 'link', linkname: 's' }, file('h/pwned')],
    refused(/goes through the symlink "h"/),
  );
});

test('unpack: ".." entries and degenerate whiteouts are refused; the root stays a directory', asRoot, async () => {
  for (const name of ['../host/pwned', 'a/../../host/pwned', '..', './..']) {
    await unpackBeside(() => [file(name)], refused(/has a "\.\." component/));
  }
  for (const name of ['.wh.', './.wh.', 'a/.wh.', '.wh..', '.wh...', 'a/b/.wh...']) {
    await unpackBeside(() => [file('a/b/keep'), file(name)], refused(/refusing layer: whiteout ".*" names no file/));
  }
  // The root entry itself, in any spelling, only sets the root's metadata.
  await unpackBeside(
    () => [file('keep'), { name: './', type: 'symlink', linkname: '/' }, { name: '.', type: 'file' }, { name: '/', type: 'directory', mode: 0o750 }],
    (d, err) => {
      assert.equal(err, null);
      assert.deepEqual(fs.readdirSync(d.dest), ['keep']);
      assert.equal(fs.statSync(d.dest).mode & 0o777, 0o750);
    },
  );
});

test('unpack: a legit opaque dir and whiteouts still work', asRoot, async () => {
  await unpackBeside(
    () => [file('a/x'), file('a/.wh..wh..opq'), file('.wh.gone'), file('b/.wh.old')],
    (d, err) => {
      assert.equal(err, null);
      assert.ok(fs.lstatSync(path.join(d.dest, 'gone')).isCharacterDevice());
      assert.ok(fs.lstatSync(path.join(d.dest, 'b/old')).isCharacterDevice());
      assert.deepEqual(fs.readdirSync(path.join(d.dest, 'a')), ['x']);
    },
  );
});
