import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTar, readTar, type TarHeader } from './tar';

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

async function collect(tar: Buffer, chunk: number): Promise<Array<{ h: TarHeader; data: string }>> {
  const chunks = (async function* () {
    for (let off = 0; off < tar.length; off += chunk) yield tar.subarray(off, off + chunk);
  })();
  const out: Array<{ h: TarHeader; data: string }> = [];
  for await (const { header, body } of readTar(chunks)) {
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(c);
    out.push({ h: header, data: Buffer.concat(parts).toString() });
  }
  return out;
}

test('round trip: long names, links, devices, binary xattrs, any chunking', async () => {
  const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0xfe, 0x80, 0x00]);
  const long = `${'d'.repeat(120)}/${'f'.repeat(80)}`;
  const tar = buildTar([
    { name: 'dir/', type: 'directory', mode: 0o1777, uid: 7, gid: 8, mtime: 1234 },
    { name: long, type: 'file', mode: 0o4755, data: Buffer.from('hello'), xattrs: new Map([['security.capability', cap]]) },
    { name: 'sym', type: 'symlink', linkname: 'l'.repeat(150) },
    { name: 'hard', type: 'link', linkname: long },
    { name: 'null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
  ]);
  for (const chunk of [1, 7, 512, 513, 100_000]) {
    const got = await collect(tar, chunk);
    assert.deepEqual(
      got.map((e) => [e.h.name, e.h.type]),
      [
        ['dir/', 'directory'],
        [long, 'file'],
        ['sym', 'symlink'],
        ['hard', 'link'],
        ['null', 'char'],
      ],
    );
    assert.equal(got[0].h.mode, 0o1777);
    assert.equal(got[0].h.uid, 7);
    assert.equal(got[0].h.mtime, 1234);
    assert.equal(got[1].data, 'hello');
    assert.equal(got[1].h.mode, 0o4755);
    assert.deepEqual(got[1].h.xattrs.get('security.capability'), cap);
    assert.equal(got[2].h.linkname, 'l'.repeat(150));
    assert.equal(got[3].h.linkname, long);
    assert.deepEqual([got[4].h.devmajor, got[4].h.devminor], [1, 3]);
  }
});

test('unread bodies are skipped; a corrupt header is an error', async () => {
  const tar = buildTar([
    { name: 'a', type: 'file', data: Buffer.alloc(1000, 1) },
    { name: 'b', type: 'file', data: Buffer.from('b') },
  ]);
  const names: string[] = [];
  for await (const { header } of readTar(once(tar))) names.push(header.name);
  assert.deepEqual(names, ['a', 'b']);
  const bad = Buffer.from(tar);
  bad[10] ^= 0xff;
  await assert.rejects(async () => {
    for await (const _ of readTar(once(bad)));
  }, /bad tar header checksum/);
});

test('each entry says where its data starts, after PAX and long-name headers', async () => {
  const data = [Buffer.from('first'), Buffer.alloc(1500, 7), Buffer.from('third')];
  const tar = buildTar([
    { name: 'a', type: 'file', data: data[0] },
    { name: `${'n'.repeat(150)}/b`, type: 'file', data: data[1], xattrs: new Map([['user.x', Buffer.from('y')]]) },
    { name: 'l', type: 'symlink', linkname: 'a' },
    { name: 'c', type: 'file', data: data[2] },
  ]);
  for (const chunk of [1, 100, 512, 4096]) {
    const chunks = (async function* () {
      for (let off = 0; off < tar.length; off += chunk) yield tar.subarray(off, off + chunk);
    })();
    const files: Buffer[] = [];
    for await (const { header, offset } of readTar(chunks)) {
      if (header.type === 'file') files.push(tar.subarray(offset, offset + header.size));
    }
    assert.deepEqual(files, data, `chunk ${chunk}`);
  }
});
