import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { ArchiveSource, dirSource, readSmall, type ImageSource } from './archive';
import { buildTar, type TarWriteEntry } from './tar';

const NO_LIMITS = { ratio: 0, floor: 0, cap: 0 };

type Entry = TarWriteEntry & { data?: Buffer };

async function withArchive(entries: Entry[], body: (src: ImageSource, scratch: string) => Promise<void>, gzip = false): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-archive-'));
  try {
    const file = path.join(dir, 'a.tar');
    const tar = buildTar(entries);
    fs.writeFileSync(file, gzip ? zlib.gzipSync(tar) : tar);
    const scratch = path.join(dir, 'scratch');
    const src = await ArchiveSource.open(file, { scratch: async () => (fs.mkdirSync(scratch), scratch), limits: NO_LIMITS, signal: new AbortController().signal });
    await body(src, scratch);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function text(src: ImageSource, name: string): Promise<string | null> {
  const f = await src.file(name, 'test file');
  return f === null ? null : (await readSmall(f, 1 << 20, name)).toString();
}

const file = (name: string, data: string): Entry => ({ name, type: 'file', data: Buffer.from(data) });

test('archive: files by name, through symlinks and hard links inside it; the last entry of a name wins', async () => {
  const entries: Entry[] = [
    file('./index.json', 'old'),
    file('index.json', '{}'),
    { name: 'blobs/', type: 'directory' },
    file('blobs/sha256/aa', 'blob a'),
    { name: 'dup/layer.tar', type: 'symlink', linkname: '../blobs/sha256/aa' },
    { name: 'sha', type: 'symlink', linkname: 'blobs/sha256' },
    { name: 'hard', type: 'link', linkname: 'blobs/sha256/aa' },
    { name: 'chain', type: 'symlink', linkname: './dup/../sha/./aa' },
    file('empty', ''),
  ];
  for (const gzip of [false, true]) {
    await withArchive(
      entries,
      async (src, scratch) => {
        assert.equal(await text(src, 'index.json'), '{}');
        assert.equal(await text(src, '/index.json'), '{}');
        assert.equal(await text(src, 'blobs/sha256/aa'), 'blob a');
        assert.equal(await text(src, 'dup/layer.tar'), 'blob a');
        assert.equal(await text(src, 'sha/aa'), 'blob a');
        assert.equal(await text(src, 'hard'), 'blob a');
        assert.equal(await text(src, 'chain'), 'blob a');
        assert.equal(await text(src, 'empty'), '');
        assert.equal(await text(src, 'missing'), null);
        assert.equal(await text(src, 'blobs/sha256/missing'), null);
        await assert.rejects(text(src, 'blobs'), /"blobs" in archive .* is a dir, not a regular file/);
        // Only a gzip'd archive needs scratch: one decompressed tar, nothing else.
        assert.deepEqual(fs.existsSync(scratch) ? fs.readdirSync(scratch) : [], gzip ? ['archive.tar'] : []);
      },
      gzip,
    );
  }
});

test('archive: a lookup through a link leaving the archive, a loop or a non-directory fails naming it', async () => {
  const entries: Entry[] = [
    { name: 'abs', type: 'symlink', linkname: '/etc' },
    { name: 'd/up', type: 'symlink', linkname: '../..' },
    { name: 'd/x/l1', type: 'symlink', linkname: '..' },
    { name: 'd/x/l2', type: 'symlink', linkname: 'l1/..' },
    { name: 'd/x/l3', type: 'symlink', linkname: 'l2/..' },
    { name: 'loop1', type: 'symlink', linkname: 'loop2' },
    { name: 'loop2', type: 'symlink', linkname: 'loop1' },
    file('f', 'file'),
    { name: 'dev', type: 'char', devmajor: 1, devminor: 3 },
    { name: 'hl', type: 'link', linkname: '/etc/shadow' },
    file('../../outside', 'x'),
  ];
  await withArchive(entries, async (src) => {
    await assert.rejects(text(src, 'abs/passwd'), /archive .*a\.tar: "abs\/passwd" goes through the symlink "abs" to "\/etc", outside the archive/);
    await assert.rejects(text(src, 'd/up/x'), /"d\/up\/x" goes through the symlink "d\/up" to "\.\.\/\.\.", outside the archive/);
    // Each link of the chain looks as if it stays inside; the third climbs out.
    assert.equal(await text(src, 'd/x/l2/f'), 'file');
    await assert.rejects(text(src, 'd/x/l3/etc/passwd'), /goes through the symlink "d\/x\/l\d" to ".*", outside the archive/);
    await assert.rejects(text(src, 'loop1'), /"loop1" goes through too many levels of symbolic links/);
    await assert.rejects(text(src, 'f/x'), /"f\/x" goes through "f", which is not a directory/);
    await assert.rejects(text(src, 'dev'), /"dev" in archive .* is a char entry, not a regular file/);
    await assert.rejects(text(src, 'hl'), /is a hard link to "\/etc\/shadow", which is not an earlier entry/);
    assert.equal(await text(src, 'd'), null, 'a directory only implied by its entries is no file');
    await assert.rejects(text(src, '../outside'), /points outside the archive/);
    assert.equal(await text(src, 'outside'), null, 'a name with .. is never stored');
  });
});

test('archive: not a tar, or bad gzip, is a clear error', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-archive-'));
  try {
    const open = (name: string, data: Buffer) => {
      fs.writeFileSync(path.join(dir, name), data);
      return ArchiveSource.open(path.join(dir, name), { scratch: async () => fs.mkdtempSync(path.join(dir, 's-')), limits: NO_LIMITS, signal: new AbortController().signal });
    };
    await assert.rejects(open('junk', Buffer.alloc(1024, 'x')), /archive .*junk is not a valid tar: /);
    await assert.rejects(open('bad.gz', Buffer.concat([zlib.gzipSync(Buffer.alloc(4096)).subarray(0, 20), Buffer.alloc(100, 0xff)])), /archive .*bad\.gz has bad gzip data/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('directory: regular files by name; ".." and non-regular files are refused', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-archive-'));
  try {
    fs.mkdirSync(path.join(dir, 'blobs/sha256'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'blobs/sha256/aa'), 'blob');
    const src = dirSource(dir);
    assert.equal(await text(src, 'blobs/sha256/aa'), 'blob');
    assert.equal(await text(src, 'nope'), null);
    assert.equal(await text(src, 'blobs/sha256/aa/x'), null);
    await assert.rejects(text(src, '../x'), /test file "\.\.\/x" points outside/);
    await assert.rejects(text(src, 'blobs'), /is not a regular file/);
    const big = await src.file('blobs/sha256/aa', 'x');
    await assert.rejects(readSmall(big!, 2, 'manifest m'), /manifest m is 4 bytes, more than the 2/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
