/**
 * Hostile archives and images stay inside (issue 15, point 6): `nodecri image import` of
 * archives whose entries climb out through absolute or chained relative symlinks, or whose
 * blobs are reached through links leaving the archive; layers whose symlinks, hard links
 * and (degenerate) whiteouts aim outside their directory or at its root; and gzip bombs, as
 * a layer pulled from a registry, a layer in an archive and the archive itself. Each host
 * target is a temp dir the test makes and removes; each test checks that nothing is left in
 * the store.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { buildTar, TAR_END, tarHeader, tarPadding } from '../../src/image/tar';
import { CriClient } from '../helpers/cri-client';
import { mainJs, makeTempDir, startTestDaemon } from '../helpers/daemon';
import {
  assembleImage,
  buildImage,
  buildLayer,
  dirEntries,
  filesLayer,
  gzipWithZeros,
  pushImage,
  writeOciLayout,
  zerosBombLayer,
  type BuiltImage,
  type LayerEntries,
} from '../helpers/images';
import { startRegistry, type TestRegistry } from '../helpers/registry';

const GiB = 1 << 30;
const MiB = 1 << 20;

let reg: TestRegistry;
let small: BuiltImage; // one small files layer
let bomb: BuiltImage; // a small base layer, then 1 GiB of zeros in ~1 MiB of gzip

before(async () => {
  reg = await startRegistry();
  small = buildImage([filesLayer({ 'hello.txt': 'hello\n' })]);
  bomb = assembleImage([buildLayer(filesLayer({ 'base.txt': 'base\n' })), zerosBombLayer(GiB)]);
  assert.ok(bomb.layers[1].blob.length < 2 * MiB, `the bomb is ${bomb.layers[1].blob.length} bytes compressed`);
});

after(async () => {
  await reg?.stop();
});

// ---- helpers ----

interface Store {
  dir: string;
  root: string;
  /** `nodecri image ARGS` against this store */
  cli(...args: string[]): { status: number | null; stdout: string; stderr: string };
}

/** A store with its own config (`image` is the body of its [image] section); always removed. */
async function withStore(image: string, body: (s: Store) => Promise<void> | void): Promise<void> {
  const dir = makeTempDir('nodecri-hostile-');
  try {
    const root = path.join(dir, 'root');
    fs.writeFileSync(path.join(dir, 'nodecri.toml'), image ? `[image]\n${image}\n` : '');
    fs.mkdirSync(path.join(dir, 'nodecri.d'));
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [mainJs, 'image', ...args, '--root', root, '--config', path.join(dir, 'nodecri.toml'), '--config-dir', path.join(dir, 'nodecri.d')], {
        encoding: 'utf8',
      });
    await body({ dir, root, cli });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A directory standing for the host, outside every store; always removed. */
async function withHost(body: (host: string) => Promise<void> | void): Promise<void> {
  const host = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-host-'));
  try {
    await body(host);
  } finally {
    fs.rmSync(host, { recursive: true, force: true });
  }
}

function ls(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** What the store holds besides images: nothing in tmp, no layer, no record, no blob. */
function assertEmptyStore(root: string, what: string): void {
  for (const sub of ['layers', 'images', 'tmp', 'blobs/sha256']) assert.deepEqual(ls(path.join(root, 'images', sub)), [], `${what}: images/${sub}`);
}

/** Every path under `dir` (to look for files an archive planted). */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out.push(p);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

function grpcError(code: Status, pattern: RegExp) {
  return (e: ServiceError) => {
    assert.equal(e.code, code, `${Status[e.code]}: ${e.details}`);
    assert.match(e.details, pattern);
    return true;
  };
}

const re = (s: string) => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

/**
 * Symlinks x/l1 -> .., x/lK -> l(K-1)/..: each looks like it stays inside (x/.. is the
 * archive root) but climbs one more real level, so x/l<levels> is / once `levels` exceeds
 * the depth of the directory the archive is extracted into.
 */
function climbingChain(levels: number): LayerEntries {
  const e: LayerEntries = [
    { name: 'x/', type: 'directory' },
    { name: 'x/l1', type: 'symlink', linkname: '..' },
  ];
  for (let k = 2; k <= levels; k++) e.push({ name: `x/l${k}`, type: 'symlink', linkname: `l${k - 1}/..` });
  return e;
}

/** Enough levels to climb from anywhere under `root` (the scratch dir is 3 below it) to /. */
const levelsFor = (root: string) => root.split('/').length + 4;

// ---- image import: entries that climb out ----

test('image import: an absolute symlink and a file through it write nothing outside the store', async () => {
  await withHost(async (host) =>
    withStore('', async (s) => {
      const layout = path.join(s.dir, 'layout');
      writeOciLayout(layout, small, 'example.com/hostile/abs:1');
      const archive = path.join(s.dir, 'abs.tar');
      fs.writeFileSync(
        archive,
        buildTar([
          { name: 'evil', type: 'symlink', linkname: host },
          { name: 'evil/pwned', type: 'file', data: Buffer.from('written through an absolute symlink\n') },
          ...dirEntries(layout),
        ]),
      );
      const r = s.cli('import', archive);
      assert.deepEqual(ls(host), [], 'nothing was written in the host dir');
      // The entries no image needs are never written anywhere; the image is imported.
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, re(`imported ${small.configDigest} (example.com/hostile/abs:1)`));
      assert.deepEqual(ls(path.join(s.root, 'images', 'tmp')), []);
      assert.ok(!tree(s.dir).some((p) => p.endsWith('pwned')));
    }),
  );
});

test('image import: a chain of relative symlinks, each climbing one real level, writes nothing outside the store', async () => {
  await withHost(async (host) =>
    withStore('', async (s) => {
      fs.writeFileSync(path.join(host, 'victim'), 'host file\n');
      const layout = path.join(s.dir, 'layout');
      writeOciLayout(layout, small, 'example.com/hostile/chain:1');
      const levels = levelsFor(s.root);
      const top = `x/l${levels}${host}`; // "/" + the host dir, through the chain
      const archive = path.join(s.dir, 'chain.tar');
      fs.writeFileSync(
        archive,
        buildTar([
          ...climbingChain(levels),
          { name: `${top}/pwned`, type: 'file', data: Buffer.from('written through a relative chain\n') },
          { name: 'x/hard', type: 'link', linkname: `${top}/victim` },
          ...dirEntries(layout),
          { name: '../../escaped', type: 'file', data: Buffer.from('a name with ..\n') },
        ]),
      );
      const r = s.cli('import', archive);
      assert.deepEqual(ls(host), ['victim'], 'nothing was written in the host dir');
      assert.equal(fs.statSync(path.join(host, 'victim')).nlink, 1, 'no hard link to the host file was made');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, re(`imported ${small.configDigest}`));
      assert.deepEqual(ls(path.join(s.root, 'images', 'tmp')), []);
      assert.ok(!tree(s.dir).some((p) => p.endsWith('pwned') || p.endsWith('escaped')));
      assert.ok(!fs.existsSync(path.join(s.dir, '..', 'escaped')));
    }),
  );
});

test('image import: blobs reached through links that leave the archive, or loop, are refused and nothing is stored', async () => {
  await withHost(async (host) =>
    withStore('', async (s) => {
      // The host holds a copy of the layer blob; the archive points its blob at it.
      const layer = small.layers[0];
      fs.writeFileSync(path.join(host, 'blob'), layer.blob);
      const layout = path.join(s.dir, 'layout');
      writeOciLayout(layout, small, 'example.com/hostile/blob:1');
      const blobName = `blobs/sha256/${layer.digest.slice(7)}`;
      const withoutLayer = dirEntries(layout).filter((e) => e.name !== blobName);
      const cases: Array<{ name: string; entries: LayerEntries; error: RegExp }> = [
        {
          name: 'absolute',
          entries: [{ name: blobName, type: 'symlink', linkname: path.join(host, 'blob') }, ...withoutLayer],
          error: re(`"${blobName}" goes through the symlink "${blobName}" to "${path.join(host, 'blob')}", outside the archive`),
        },
        {
          name: 'relative',
          entries: [...withoutLayer, { name: blobName, type: 'symlink', linkname: `../../..${host}/blob` }],
          error: re(`"${blobName}" goes through the symlink "${blobName}" to "../../..${host}/blob", outside the archive`),
        },
        {
          name: 'dir',
          entries: [...withoutLayer.filter((e) => !e.name.startsWith('blobs/')), { name: 'blobs', type: 'symlink', linkname: host }],
          error: /goes through the symlink "blobs" to ".*", outside the archive/,
        },
        {
          name: 'loop',
          entries: [...withoutLayer, { name: blobName, type: 'symlink', linkname: 'loop' }, { name: 'blobs/sha256/loop', type: 'symlink', linkname: layer.digest.slice(7) }],
          error: re(`"${blobName}" goes through too many levels of symbolic links`),
        },
      ];
      for (const c of cases) {
        const archive = path.join(s.dir, `${c.name}.tar`);
        fs.writeFileSync(archive, buildTar(c.entries));
        const r = s.cli('import', archive);
        assert.equal(r.status, 1, `${c.name}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /^nodecri: archive .*: /, c.name);
        assert.match(r.stderr, c.error, c.name);
        assertEmptyStore(s.root, c.name);
      }
      assert.deepEqual(ls(host), ['blob']);
    }),
  );
});

test('image import: a docker archive whose layers are shared through relative symlinks inside it imports', async () => {
  await withStore('', async (s) => {
    // docker save writes a layer used twice once, and links the second name to the first.
    const base = buildLayer(filesLayer({ 'base.txt': 'base\n' }));
    const one = assembleImage([base, buildLayer(filesLayer({ 'one.txt': '1\n' }))]);
    const two = assembleImage([base, buildLayer(filesLayer({ 'two.txt': '2\n' }))]);
    const tarOf = (l: typeof base) => zlib.gunzipSync(l.blob);
    const entries: LayerEntries = [
      { name: 'base/', type: 'directory' },
      { name: 'base/layer.tar', type: 'file', data: tarOf(base) },
      { name: 'one/', type: 'directory' },
      { name: 'one/layer.tar', type: 'file', data: tarOf(one.layers[1]) },
      { name: 'two/', type: 'directory' },
      { name: 'two/layer.tar', type: 'file', data: tarOf(two.layers[1]) },
      { name: 'again/', type: 'directory' },
      { name: 'again/layer.tar', type: 'symlink', linkname: '../base/layer.tar' },
      { name: 'one.json', type: 'file', data: one.config },
      { name: 'two.json', type: 'file', data: two.config },
      {
        name: 'manifest.json',
        type: 'file',
        data: Buffer.from(
          JSON.stringify([
            { Config: 'one.json', RepoTags: ['example.com/shared/one:1'], Layers: ['base/layer.tar', 'one/layer.tar'] },
            { Config: 'two.json', RepoTags: ['example.com/shared/two:1'], Layers: ['again/layer.tar', 'two/layer.tar'] },
          ]),
        ),
      },
    ];
    const archive = path.join(s.dir, 'shared.tar');
    fs.writeFileSync(archive, buildTar(entries));
    const r = s.cli('import', archive);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, re(`imported ${one.configDigest} (example.com/shared/one:1)`));
    assert.match(r.stdout, re(`imported ${two.configDigest} (example.com/shared/two:1)`));
    assert.equal(ls(path.join(s.root, 'images', 'layers')).length, 3);
    assert.deepEqual(ls(path.join(s.root, 'images', 'tmp')), []);
  });
});

// ---- the layer unpacker ----

test('PullImage: layers whose links or whiteouts aim outside their directory or at its root are refused', async () => {
  await withHost(async (host) => {
    fs.writeFileSync(path.join(host, 'victim'), 'host file\n');
    const f = (name: string) => ({ name, type: 'file' as const, data: Buffer.from('x\n') });
    const cases: Array<{ tag: string; layer: LayerEntries; error: RegExp }> = [
      { tag: 'chain', layer: [...climbingChain(4), f('x/l4/pwned')], error: /tar entry "x\/l4\/pwned" goes through the symlink "x\/l4"/ },
      {
        tag: 'hardlink-to-symlink',
        layer: [{ name: 's', type: 'symlink', linkname: host }, { name: 'h', type: 'link', linkname: 's' }, f('h/pwned')],
        error: /tar entry "h\/pwned" goes through the symlink "h"/,
      },
      {
        tag: 'hardlink-out',
        layer: [...climbingChain(4), { name: 'h', type: 'link', linkname: `x/l4${host}/victim` }],
        error: /hard link "h" points to .*, which is not a file of this layer/,
      },
      { tag: 'whiteout-through-link', layer: [{ name: 's', type: 'symlink', linkname: host }, f('s/.wh.victim')], error: /tar entry "s\/.wh.victim" goes through the symlink "s"/ },
      { tag: 'opaque-through-link', layer: [{ name: 's', type: 'symlink', linkname: host }, f('s/sub/.wh..wh..opq')], error: /goes through the symlink "s"/ },
      { tag: 'whiteout-root', layer: [f('keep.txt'), f('.wh.')], error: /refusing layer: whiteout "\.wh\." names no file/ },
      { tag: 'whiteout-subdir', layer: [f('a/keep.txt'), f('a/.wh.')], error: /refusing layer: whiteout "a\/\.wh\." names no file/ },
      { tag: 'whiteout-dot', layer: [f('a/keep.txt'), f('a/.wh..')], error: /refusing layer: whiteout "a\/\.wh\.\." names no file/ },
      { tag: 'whiteout-dotdot', layer: [f('keep.txt'), f('.wh...')], error: /refusing layer: whiteout "\.wh\.\.\." names no file/ },
      { tag: 'whiteout-dotdot-sub', layer: [f('a/b/keep.txt'), f('a/b/.wh...')], error: /refusing layer: whiteout "a\/b\/\.wh\.\.\." names no file/ },
      { tag: 'dotdot-dir', layer: [{ name: 'a/../../up/', type: 'directory' }], error: /has a "\.\." component/ },
    ];
    for (const c of cases) await pushImage(reg.host, 'test/hostile', c.tag, buildImage([c.layer]));
    const d = await startTestDaemon({ dropIns: { '50-images.toml': `[image]\npull_timeout = 30\n[[image.registries]]\nlocation = "${reg.host}"\ninsecure = true\n` } });
    const client = new CriClient(d.socket);
    try {
      for (const c of cases) {
        await assert.rejects(client.call('PullImage', { image: { image: `${reg.host}/test/hostile:${c.tag}` } }), grpcError(Status.INVALID_ARGUMENT, c.error), c.tag);
        assertEmptyStore(d.root, c.tag);
      }
      assert.deepEqual(ls(host), ['victim']);
      assert.equal(fs.readFileSync(path.join(host, 'victim'), 'utf8'), 'host file\n');
    } finally {
      client.close();
      await d.cleanup();
    }
  });
});

// ---- decompression bombs ----

test('PullImage of a gzip bomb (1 GiB of zeros in ~1 MiB) fails on the default limits, naming the layer and the limit; nothing is left', async () => {
  await pushImage(reg.host, 'test/bomb', 'v1', bomb);
  const d = await startTestDaemon({ dropIns: { '50-images.toml': `[image]\npull_timeout = 60\n[[image.registries]]\nlocation = "${reg.host}"\ninsecure = true\n` } });
  const client = new CriClient(d.socket);
  try {
    const layer = bomb.layers[1];
    // The defaults: max(100 x the compressed size, 512 MiB).
    await assert.rejects(
      client.call('PullImage', { image: { image: `${reg.host}/test/bomb:v1` } }),
      grpcError(Status.FAILED_PRECONDITION, re(`layer ${layer.digest} of ${reg.host}/test/bomb unpacks to more than 536870912 bytes (512 MiB)`)),
    );
    assert.deepEqual((await client.call('ListImages', {})).images, []);
    assertEmptyStore(d.root, 'after the bomb');
  } finally {
    client.close();
    await d.cleanup();
  }
});

test('image import of a gzip bomb layer (layout dir and tar) fails naming the layer and the configured limit; nothing is left', async () => {
  await withStore('max_layer_ratio = 100\nmax_layer_ratio_floor = 16777216', async (s) => {
    const layer = bomb.layers[1];
    const limit = 100 * layer.blob.length;
    const layout = path.join(s.dir, 'layout');
    writeOciLayout(layout, bomb, 'example.com/bomb:1');
    const archive = path.join(s.dir, 'bomb.tar');
    fs.writeFileSync(archive, buildTar(dirEntries(layout)));
    for (const input of [layout, archive]) {
      const r = s.cli('import', input);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stderr, re(`nodecri: layer ${layer.digest} unpacks to more than ${limit} bytes`));
      assert.match(r.stderr, re(`max_layer_ratio = 100`));
      assertEmptyStore(s.root, input);
    }
  });
});

test('image import of a gzip-compressed archive that is itself a bomb fails naming the archive and the limit; nothing is left', async () => {
  await withStore('max_layer_ratio = 100\nmax_layer_ratio_floor = 16777216', async (s) => {
    const layout = path.join(s.dir, 'layout');
    writeOciLayout(layout, small, 'example.com/small:1');
    // A valid layout, then a 1 GiB file of zeros, the whole archive gzip'd.
    const head = Buffer.concat([buildTar(dirEntries(layout)).subarray(0, -TAR_END.length), tarHeader({ name: 'padding', type: 'file', size: GiB })]);
    const { blob } = gzipWithZeros(head, GiB, Buffer.concat([tarPadding(GiB), TAR_END]));
    const archive = path.join(s.dir, 'bomb.tar.gz');
    fs.writeFileSync(archive, blob);
    const r = s.cli('import', archive);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, re(`nodecri: archive ${archive} unpacks to more than ${100 * blob.length} bytes`));
    assertEmptyStore(s.root, 'archive bomb');
  });
});
