/**
 * SPDY/3 header compression: ONE zlib stream per direction per connection, with the SPDY/3
 * dictionary, each header block ending in a Z_SYNC_FLUSH (draft 3.1, 2.6.10.1). The context is
 * stateful across frames (a block may refer back to bytes of earlier blocks), so blocks must be
 * compressed and decompressed in exactly the order the frames are sent and received.
 *
 * Node's zlib streams work on the libuv pool and call back later; each class here keeps one
 * operation in flight at a time (a promise chain), so order is kept and the event loop never
 * blocks on zlib. A failure poisons the context for good: the session treats it as fatal.
 */
import * as zlib from 'node:zlib';
import { SPDY3_DICTIONARY } from './dictionary';

const SYNC_FLUSH_MARKER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

export class HeaderCompressionError extends Error {}

/** Compresses header blocks for one direction of one connection. */
export class HeaderCompressor {
  private readonly deflate = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY });
  private chain: Promise<unknown> = Promise.resolve();
  private output: Buffer[] = [];
  private failure: Error | null = null;
  private closed = false;

  constructor() {
    this.deflate.on('data', (chunk: Buffer) => this.output.push(chunk));
    this.deflate.on('error', (err: Error) => {
      this.failure = err;
    });
  }

  /** The compressed form of `block`, ending in a sync flush; calls resolve in call order. */
  compress(block: Buffer): Promise<Buffer> {
    const run = this.chain.then(() => this.compressNow(block));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private compressNow(block: Buffer): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      if (this.failure || this.closed) return reject(this.failure ?? new HeaderCompressionError('header compressor is closed'));
      this.output = [];
      const settle = (): void => {
        if (this.failure || this.closed) return reject(this.failure ?? new HeaderCompressionError('header compressor is closed'));
        const out = Buffer.concat(this.output);
        // A sync flush always ends the output with an empty stored block; until it is seen
        // the block's output is not complete (zlib hands its output out as 'data' events).
        if (out.length >= 4 && out.subarray(out.length - 4).equals(SYNC_FLUSH_MARKER)) {
          this.output = [];
          resolve(out);
        } else {
          this.deflate.once('data', () => setImmediate(settle));
        }
      };
      this.deflate.write(block);
      this.deflate.flush(zlib.constants.Z_SYNC_FLUSH, settle);
    });
  }

  close(): void {
    this.closed = true;
    this.deflate.destroy();
  }
}

/** Decompresses header blocks for one direction of one connection, with a bound on each block's output. */
export class HeaderDecompressor {
  private readonly inflate = zlib.createInflate({ dictionary: SPDY3_DICTIONARY });
  private chain: Promise<unknown> = Promise.resolve();
  private output: Buffer[] = [];
  private outputLength = 0;
  private failure: Error | null = null;
  private closed = false;

  constructor(private readonly maxBlockLength: number) {
    this.inflate.on('data', (chunk: Buffer) => {
      this.outputLength += chunk.length;
      if (this.outputLength > this.maxBlockLength) {
        // A block that inflates past the bound (a "zip bomb") stops the context at once,
        // rather than letting zlib go on producing output nobody will read.
        this.failure ??= new HeaderCompressionError(`SPDY header block inflates past ${this.maxBlockLength} bytes`);
        this.inflate.destroy();
        return;
      }
      this.output.push(chunk);
    });
    this.inflate.on('error', (err: Error) => {
      this.failure ??= new HeaderCompressionError(`SPDY header block does not inflate: ${err.message}`);
    });
  }

  /** The uncompressed bytes of `block`; calls resolve in call order. */
  decompress(block: Buffer): Promise<Buffer> {
    const run = this.chain.then(() => this.decompressNow(block));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private decompressNow(block: Buffer): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const failed = (): Error | null => this.failure ?? (this.closed || this.inflate.destroyed ? new HeaderCompressionError('header decompressor is closed') : null);
      const early = failed();
      if (early) return reject(early);
      this.output = [];
      this.outputLength = 0;
      let settled = false;
      const settle = (): void => {
        if (settled) return;
        settled = true;
        this.inflate.off('close', settle);
        const err = failed();
        if (err) return reject(err);
        const out = Buffer.concat(this.output);
        this.output = [];
        resolve(out);
      };
      // An error or the bound destroys the stream, and then the flush callback may never run.
      this.inflate.once('close', settle);
      this.inflate.write(block);
      this.inflate.flush(zlib.constants.Z_SYNC_FLUSH, settle);
    });
  }

  close(): void {
    this.closed = true;
    this.inflate.destroy();
  }
}
