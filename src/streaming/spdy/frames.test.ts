import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as zlib from 'node:zlib';
import { SPDY3_DICTIONARY } from './dictionary';
import {
  ByteQueue,
  FLAG_FIN,
  FrameType,
  HeaderBlockError,
  decodeFrameHead,
  decodeHeaderBlock,
  encodeData,
  encodeGoAway,
  encodeHeaderBlock,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeSynReply,
  encodeSynStream,
  encodeWindowUpdate,
} from './frames';
import { HeaderCompressor, HeaderDecompressor } from './header-compression';

function adler32(buf: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of buf) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

describe('SPDY/3 dictionary', { timeout: 10_000 }, () => {
  it('is the 1423 bytes of the draft, with the Adler-32 a zlib stream using it announces', () => {
    assert.equal(SPDY3_DICTIONARY.length, 1423);
    assert.equal(SPDY3_DICTIONARY.subarray(0, 11).toString('latin1'), '\0\0\0\x07options');
    assert.ok(SPDY3_DICTIONARY.toString('latin1').endsWith('charset=iso-8859-1,utf-,*,enq=0.'));
    // A zlib stream with a preset dictionary carries the dictionary's Adler-32 after its 2-byte header (RFC 1950).
    const z = zlib.deflateSync(Buffer.from('x'), { dictionary: SPDY3_DICTIONARY });
    assert.equal(z[1] & 0x20, 0x20, 'FDICT is set');
    assert.equal(z.readUInt32BE(2), adler32(SPDY3_DICTIONARY));
    // What spdystream's Go reader (compress/zlib NewReaderDict) compares the stream's dictionary id with.
    assert.equal(adler32(SPDY3_DICTIONARY), 0xe3c6a7c2);
  });
});

describe('SPDY frames', { timeout: 10_000 }, () => {
  it('encodes control frame heads as version 3 with type, flags and 24-bit length', () => {
    const rst = encodeRstStream(5, 5);
    assert.equal(rst.toString('hex'), '80030003000000080000000500000005');
    assert.deepEqual(decodeFrameHead(rst), { control: true, version: 3, type: FrameType.RST_STREAM, flags: 0, length: 8 });
    assert.equal(encodePing(1).toString('hex'), '800300060000000400000001');
    assert.equal(encodeGoAway(3, 1).toString('hex'), '80030007000000080000000300000001');
    assert.equal(encodeWindowUpdate(0, 32768).toString('hex'), '80030009000000080000000000008000');
    assert.equal(encodeSettings([{ id: 7, value: 65536 }]).toString('hex'), '800300040000000c000000010000000700010000');
    const syn = encodeSynStream(1, FLAG_FIN, Buffer.from('abc'), 0);
    assert.equal(syn.toString('hex'), '800300010100000d000000010000000000' + '00' + '616263');
    assert.equal(encodeSynReply(2, 0, Buffer.from('z')).toString('hex'), '8003000200000005000000027a');
  });

  it('encodes DATA frames with a clear high bit, the stream id, flags and length', () => {
    const data = encodeData(3, FLAG_FIN, Buffer.from('hi'));
    assert.equal(data.toString('hex'), '00000003010000026869');
    assert.deepEqual(decodeFrameHead(data), { control: false, streamId: 3, flags: FLAG_FIN, length: 2 });
    assert.throws(() => encodeData(1, 0, Buffer.alloc(0x1000000)), RangeError);
  });

  it('round-trips header blocks with lower-case names, and keeps the SPDY/3 32-bit lengths', () => {
    const block = encodeHeaderBlock({ StreamType: 'error' });
    assert.equal(block.toString('hex'), '00000001' + '0000000a' + Buffer.from('streamtype').toString('hex') + '00000005' + Buffer.from('error').toString('hex'));
    const back = decodeHeaderBlock(encodeHeaderBlock({ streamtype: 'data', port: '8080', requestid: '0', __proto__x: 'y' }));
    assert.deepEqual({ ...back }, { streamtype: 'data', port: '8080', requestid: '0', __proto__x: 'y' });
    const proto = decodeHeaderBlock(encodeHeaderBlock(JSON.parse('{"__proto__":"v"}') as Record<string, string>));
    assert.equal(Object.getPrototypeOf(proto), null);
    assert.equal(proto['__proto__'], 'v');
  });

  it('refuses malformed header blocks', () => {
    const bad = (hex: string) => assert.throws(() => decodeHeaderBlock(Buffer.from(hex, 'hex')), HeaderBlockError, hex);
    bad('');
    bad('ffffffff'); // a count the block cannot hold
    bad('00000001000000ff61'); // a name past the end
    bad('000000010000000000000000'); // an empty name
    bad('00000002' + '00000001' + '61' + '00000000' + '00000001' + '61' + '00000000'); // a name twice
    bad('00000000' + '00'); // bytes after the last pair
    assert.deepEqual({ ...decodeHeaderBlock(Buffer.from('00000000', 'hex')) }, {});
  });

  it('ByteQueue hands back bytes across chunk boundaries as they arrived', () => {
    const q = new ByteQueue();
    q.push(Buffer.from('ab'));
    q.push(Buffer.from('cdef'));
    q.push(Buffer.from('g'));
    assert.equal(q.length, 7);
    assert.equal(q.peek(3).toString(), 'abc');
    assert.equal(q.take(3).toString(), 'abc');
    assert.equal(q.takeSome(10).toString(), 'def');
    assert.equal(q.length, 1);
    q.skip(1);
    assert.equal(q.length, 0);
  });
});

describe('SPDY header compression', { timeout: 10_000 }, () => {
  it('keeps one context per direction: blocks inflate in order, and a repeated block compresses smaller', async () => {
    const deflate = new HeaderCompressor();
    const inflate = new HeaderDecompressor(1024 * 1024);
    const blocks = [encodeHeaderBlock({ streamtype: 'error' }), encodeHeaderBlock({ streamtype: 'stdout' }), encodeHeaderBlock({ streamtype: 'error' })];
    const compressed = await Promise.all(blocks.map((b) => deflate.compress(b)));
    for (const c of compressed) assert.equal(c.subarray(c.length - 4).toString('hex'), '0000ffff', 'each block ends in a sync flush');
    assert.equal(compressed[0].readUInt16BE(0) % 31, 0, 'the first block starts the zlib stream');
    assert.ok(compressed[2].length < compressed[0].length, 'the third refers back to the first');
    const inflated = await Promise.all(compressed.map((c) => inflate.decompress(c)));
    assert.deepEqual(inflated, blocks);
    deflate.close();
    inflate.close();
  });

  it('refuses a block that inflates past the bound, and garbage', async () => {
    const big = zlib.deflateSync(encodeHeaderBlock({ a: 'x'.repeat(2 * 1024 * 1024) }), { dictionary: SPDY3_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const inflate = new HeaderDecompressor(1024 * 1024);
    await assert.rejects(inflate.decompress(big), /inflates past/);
    await assert.rejects(inflate.decompress(Buffer.from('78bb')), /closed|inflate/);
    inflate.close();
    const garbage = new HeaderDecompressor(1024 * 1024);
    await assert.rejects(garbage.decompress(Buffer.from('this is not zlib at all')), /does not inflate/);
    garbage.close();
  });
});
