/**
 * SPDY/3 header compression: ONE zlib stream per direction per connection, with the SPDY/3
 * dictionary, each header block ending in a Z_SYNC_FLUSH (draft 3.1, 2.6.10.1). The context is
 * stateful across frames (a block may refer back to bytes of earlier blocks), so blocks must be
 * compressed and decompressed in exactly the order the frames are sent and received.
 *
 * pako (the standard pure-JS zlib) does it synchronously, on the event loop, instead of
 * node:zlib's streams on the libuv pool: a header block is a few hundred bytes, and a pool
 * round trip per block cost more than the work (an exec opens 3 to 5 streams, each a
 * SYN_STREAM and a SYN_REPLY: four pool hops per stream across both sides, each waiting its
 * turn on a loaded node). node:zlib has no synchronous call that keeps a context across
 * blocks (its *Sync functions close the stream after one buffer). What bounds the work on
 * the loop: the session refuses control frames longer than its limit, and a block's output
 * is capped (a "zip bomb" stops at the cap instead of being inflated whole). A failure
 * poisons the context for good: the session treats it as fatal. The API stays promise-shaped.
 */
import * as pako from 'pako';
import { SPDY3_DICTIONARY } from './dictionary';

export class HeaderCompressionError extends Error {}

const Z_SYNC_FLUSH = 2;
const Z_OK = 0;

/** Compresses header blocks for one direction of one connection. */
export class HeaderCompressor {
  private readonly deflate = new pako.Deflate({ dictionary: SPDY3_DICTIONARY });
  private output: Uint8Array[] = [];
  private failure: Error | null = null;
  private closed = false;

  constructor() {
    this.deflate.onData = (chunk: Uint8Array) => void this.output.push(chunk);
  }

  /** The compressed form of `block`, ending in a sync flush. */
  compress(block: Buffer): Promise<Buffer> {
    if (this.failure || this.closed) return Promise.reject(this.failure ?? new HeaderCompressionError('header compressor is closed'));
    this.output = [];
    if (!this.deflate.push(block, Z_SYNC_FLUSH) || this.deflate.err !== Z_OK) {
      this.failure = new HeaderCompressionError(`SPDY header compression failed: ${this.deflate.msg || this.deflate.err}`);
      return Promise.reject(this.failure);
    }
    const out = Buffer.concat(this.output);
    this.output = [];
    return Promise.resolve(out);
  }

  close(): void {
    this.closed = true;
    this.output = [];
  }
}

/** Decompresses header blocks for one direction of one connection, with a bound on each block's output. */
export class HeaderDecompressor {
  private readonly inflate = new pako.Inflate({ dictionary: SPDY3_DICTIONARY, chunkSize: 16 * 1024 });
  private output: Uint8Array[] = [];
  private outputLength = 0;
  private failure: Error | null = null;
  private closed = false;

  constructor(private readonly maxBlockLength: number) {
    this.inflate.onData = (chunk: Uint8Array) => {
      this.outputLength += chunk.length;
      // Thrown out of push(): inflating stops at the bound, the context is dead from then on.
      if (this.outputLength > this.maxBlockLength) throw new HeaderCompressionError(`SPDY header block inflates past ${this.maxBlockLength} bytes`);
      this.output.push(chunk);
    };
  }

  /** The uncompressed bytes of `block`. */
  decompress(block: Buffer): Promise<Buffer> {
    if (this.failure || this.closed) return Promise.reject(this.failure ?? new HeaderCompressionError('header decompressor is closed'));
    this.output = [];
    this.outputLength = 0;
    try {
      if (!this.inflate.push(block, Z_SYNC_FLUSH) || this.inflate.err !== Z_OK)
        throw new HeaderCompressionError(`SPDY header block does not inflate: ${this.inflate.msg || this.inflate.err}`);
    } catch (e) {
      this.failure = e instanceof HeaderCompressionError ? e : new HeaderCompressionError(`SPDY header block does not inflate: ${(e as Error).message}`);
      this.output = [];
      return Promise.reject(this.failure);
    }
    const out = Buffer.concat(this.output);
    this.output = [];
    return Promise.resolve(out);
  }

  close(): void {
    this.closed = true;
    this.output = [];
  }
}
