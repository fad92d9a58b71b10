/**
 * A layer blob from a byte stream into a directory, in one pass: the compressed bytes are
 * hashed as they arrive, decompressed (gzip, or none), counted against the unpack limit
 * (limits.ts: a gzip bomb stops here, as it streams), hashed again (the diff ID) and
 * unpacked. Both digests are checked at the end; the caller commits the directory only if
 * this resolves, so a corrupt, substituted or oversized blob leaves nothing behind.
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { invalidArgument, RuntimeError } from '../domain/errors';
import { ByteLimit, unpackLimit, type LayerLimits } from './limits';
import { DigestMismatchError } from './manifest';
import { readTar, TarFormatError } from './tar';
import { unpackLayer, type UnpackStats } from './unpack';

export interface LayerExpectation {
  /** the blob's digest (compressed form), or null when unknown (docker-archive layers) */
  digest: string | null;
  /** the blob's size in bytes, or null when unknown */
  size: number | null;
  /** the uncompressed tar's digest, from the image config */
  diffId: string;
  /** names the layer in errors, e.g. "layer sha256:ab.. of 127.0.0.1:5000/app" */
  what: string;
}

export interface LayerResult extends UnpackStats {
  /** bytes of the blob as read */
  compressedSize: number;
}

/** Hashes and counts what passes through; refuses more than `limit` bytes. */
class Tap extends Transform {
  bytes = 0;
  constructor(
    readonly hash: Hash,
    private readonly limit: number | null,
    private readonly what: string,
    private readonly onBytes: ((n: number) => void) | null,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.limit !== null && this.bytes > this.limit) {
      cb(invalidArgument(`${this.what} is larger than the ${this.limit} bytes its descriptor says`));
      return;
    }
    this.hash.update(chunk);
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }
}

type Compression = 'gzip' | 'zstd' | 'none';

/**
 * Large output chunks and a 1 MiB read-ahead, so that decompression (on the libuv pool)
 * runs ahead while the previous chunk is written. zlib streams take the Transform's
 * highWaterMark, which @types/node's ZlibOptions does not list.
 */
const GUNZIP_OPTIONS: zlib.ZlibOptions & { highWaterMark: number } = { chunkSize: 256 * 1024, highWaterMark: 1 << 20 };

function sniff(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** `source` with its first chunk read ahead, so the compression can be told from magic bytes. */
async function peek(source: Readable): Promise<{ head: Buffer; stream: Readable }> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await it.next();
  const head = first.done ? Buffer.alloc(0) : first.value;
  const stream = Readable.from(
    (async function* () {
      if (head.length > 0) yield head;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield n.value;
      }
    })(),
    { objectMode: false },
  );
  stream.once('close', () => source.destroy());
  return { head, stream };
}

export interface UnpackOptions {
  signal: AbortSignal;
  /** how far the layer may decompress, relative to its compressed size */
  limits: LayerLimits;
  /** the blob's size when `expect.size` is unknown (a docker-archive layer's file) */
  sourceSize?: number;
  onBytes?: (n: number) => void;
  /** maps stream errors of the source (a dropped connection) to a RuntimeError */
  transportError?: (e: unknown) => unknown;
}

/** Reads the layer from `source` into the empty directory `dest`. */
export async function unpackLayerStream(source: Readable, expect: LayerExpectation, dest: string, opts: UnpackOptions): Promise<LayerResult> {
  let stats: UnpackStats = { size: 0, inodes: 0 };
  const tap = new Tap(createHash('sha256'), expect.size, expect.what, opts.onBytes ?? null);
  const diffHash = createHash('sha256');
  let compression: Compression = 'none';
  try {
    const { head, stream } = await peek(source);
    compression = sniff(head);
    if (compression === 'zstd') throw invalidArgument(`${expect.what} is zstd-compressed, which this runtime does not support`);
    const consume = async (input: AsyncIterable<Buffer>) => {
      const hashed = (async function* () {
        for await (const c of input) {
          diffHash.update(c);
          yield c;
        }
      })();
      stats = await unpackLayer(readTar(hashed), dest);
    };
    const limit = new ByteLimit(unpackLimit(opts.limits, expect.size ?? opts.sourceSize ?? 0), expect.what);
    if (compression === 'gzip') await pipeline(stream, tap, zlib.createGunzip(GUNZIP_OPTIONS), limit, consume, { signal: opts.signal });
    else await pipeline(stream, tap, limit, consume, { signal: opts.signal });
  } catch (e) {
    if (opts.signal.aborted) throw opts.signal.reason;
    if (e instanceof RuntimeError) throw e;
    if (e instanceof TarFormatError) throw invalidArgument(`${expect.what} is not a valid tar: ${e.message}`);
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (code.startsWith('Z_') || code === 'ERR_ZLIB_INITIALIZATION_FAILED') throw invalidArgument(`${expect.what} has bad ${compression} data: ${(e as Error).message}`);
    throw opts.transportError ? opts.transportError(e) : e;
  }
  const digest = `sha256:${tap.hash.digest('hex')}`;
  if (expect.digest !== null && digest !== expect.digest) throw new DigestMismatchError(expect.what, expect.digest, digest);
  if (expect.size !== null && tap.bytes !== expect.size) throw invalidArgument(`${expect.what} has ${tap.bytes} bytes where its descriptor says ${expect.size}`);
  const diffId = `sha256:${diffHash.digest('hex')}`;
  if (diffId !== expect.diffId) throw new DigestMismatchError(`the uncompressed ${expect.what}`, expect.diffId, diffId);
  return { ...stats, compressedSize: tap.bytes };
}
