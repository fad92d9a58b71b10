/**
 * A tar reader and writer for image layers. Our own rather than a package because layers
 * carry binary extended attributes in PAX records (security.capability), and the common
 * packages decode PAX values as UTF-8 text, which corrupts them. Reads ustar, GNU long names
 * and PAX (per-entry and global); sparse entries are refused.
 */

export type TarEntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo';

export interface TarHeader {
  /** as stored (after PAX/GNU long-name resolution), not normalized */
  name: string;
  type: TarEntryType;
  /** permission and set-id bits */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** seconds since the epoch (fractional from PAX) */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** PAX SCHILY.xattr.* records, values as raw bytes */
  xattrs: Map<string, Buffer>;
}

export interface TarEntry {
  header: TarHeader;
  /** where the entry's data starts in the tar stream (bytes), for reading it again by position */
  offset: number;
  /** The entry's data; must be consumed (or skipped with drain) before the next entry. */
  body: AsyncGenerator<Buffer>;
}

export class TarFormatError extends Error {
  override readonly name = 'TarFormatError';
}

const BLOCK = 512;
const EMPTY = Buffer.alloc(0);

/** Buffered reader over an async source of chunks. */
class ChunkReader {
  private buf: Buffer = EMPTY;
  /** a chunk read ahead while completing a header: only what the header needed was copied */
  private next: Buffer | null = null;
  private eof = false;
  /** bytes taken so far: the position in the stream of what comes next */
  position = 0;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async read(): Promise<Buffer | null> {
    if (this.next !== null) {
      const n = this.next;
      this.next = null;
      return n;
    }
    for (;;) {
      const r = await this.it.next();
      if (r.done) {
        this.eof = true;
        return null;
      }
      if (r.value.length > 0) return r.value;
    }
  }

  /** Makes at least n bytes available; false at end of input. */
  async fill(n: number): Promise<boolean> {
    while (this.buf.length < n && !(this.eof && this.next === null)) {
      const chunk = await this.read();
      if (chunk === null) break;
      if (this.buf.length === 0) {
        this.buf = chunk;
      } else {
        // Copy only the bytes needed to complete n, not the whole (large) next chunk.
        const want = n - this.buf.length;
        this.buf = Buffer.concat([this.buf, chunk.subarray(0, want)]);
        if (chunk.length > want) this.next = chunk.subarray(want);
      }
    }
    return this.buf.length >= n;
  }

  take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.position += out.length;
    return out;
  }

  /** Yields exactly n bytes as they arrive, without copying. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill(1))) throw new TarFormatError('unexpected end of tar data');
      const k = Math.min(left, this.buf.length);
      left -= k;
      yield this.take(k);
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n));
  }

  /** Reads and discards everything left (tar padding after the end blocks). */
  async drain(): Promise<void> {
    this.buf = EMPTY;
    while ((await this.read()) !== null);
  }
}

function cstring(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

/** An octal number field, or base-256 when the top bit of the first byte is set. */
function number(b: Buffer, start: number, len: number): number {
  const field = b.subarray(start, start + len);
  if (field[0] & 0x80) {
    let v = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i];
    return v;
  }
  const s = field
    .toString('latin1')
    .replace(/[\0 ]+.*$/s, '')
    .trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`bad numeric field ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function checksumOk(b: Buffer): boolean {
  const stored = number(b, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : b[i];
  return sum === stored;
}

/** Parses PAX records "LEN key=value\n" into raw-byte values. */
export function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp < 0) break;
    const len = parseInt(data.toString('latin1', off, sp), 10);
    if (!Number.isSafeInteger(len) || len <= 0 || off + len > data.length) throw new TarFormatError('bad pax record length');
    const rec = data.subarray(sp + 1, off + len - 1); // without the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new TarFormatError('bad pax record');
    out.set(rec.toString('utf8', 0, eq), rec.subarray(eq + 1));
    off += len;
  }
  return out;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'directory',
  '6': 'fifo',
};

/**
 * Reads tar entries from `source`. Each entry's body must be consumed before asking for the
 * next one; bodies left unread are skipped. The whole source is read to its end.
 */
export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<TarEntry> {
  const r = new ChunkReader(source[Symbol.asyncIterator]());
  const global = new Map<string, Buffer>();
  let pax: Map<string, Buffer> | null = null;
  let longName: string | null = null;
  let longLink: string | null = null;
  for (;;) {
    if (!(await r.fill(BLOCK))) break; // a tar without end blocks: accept, as GNU tar does
    const h = Buffer.from(r.take(BLOCK));
    if (h.every((x) => x === 0)) break;
    if (!checksumOk(h)) throw new TarFormatError('bad tar header checksum');
    const flag = String.fromCharCode(h[156]);
    const size = number(h, 124, 12);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > 16 * 1024 * 1024) throw new TarFormatError('oversized tar metadata entry');
      if (!(await r.fill(padded))) throw new TarFormatError('unexpected end of tar data');
      const data = Buffer.from(r.take(padded).subarray(0, size));
      if (flag === 'x') pax = parsePax(data);
      else if (flag === 'g') for (const [k, v] of parsePax(data)) global.set(k, v);
      else if (flag === 'L') longName = cstring(data, 0, data.length);
      else longLink = cstring(data, 0, data.length);
      continue;
    }
    let type = TYPES[flag];
    if (type === undefined) throw new TarFormatError(`unsupported tar entry type ${JSON.stringify(flag)}${flag === 'S' ? ' (sparse file)' : ''}`);
    const records = new Map([...global, ...(pax ?? [])]);
    const magic = h.toString('latin1', 257, 262);
    const prefix = magic === 'ustar' ? cstring(h, 345, 155) : '';
    const name = longName ?? (prefix ? `${prefix}/${cstring(h, 0, 100)}` : cstring(h, 0, 100));
    const linkname = longLink ?? cstring(h, 157, 100);
    const header: TarHeader = {
      name,
      type,
      mode: number(h, 100, 8) & 0o7777,
      uid: number(h, 108, 8),
      gid: number(h, 116, 8),
      size: type === 'file' ? size : 0,
      mtime: number(h, 136, 12),
      linkname,
      devmajor: magic === 'ustar' ? number(h, 329, 8) : 0,
      devminor: magic === 'ustar' ? number(h, 337, 8) : 0,
      xattrs: new Map(),
    };
    for (const [k, v] of records) {
      const s = () => v.toString('utf8');
      if (k === 'path') header.name = s();
      else if (k === 'linkpath') header.linkname = s();
      else if (k === 'size' && type === 'file') header.size = Number(s());
      else if (k === 'uid') header.uid = Number(s());
      else if (k === 'gid') header.gid = Number(s());
      else if (k === 'mtime') header.mtime = Number(s());
      else if (k.startsWith('SCHILY.xattr.')) header.xattrs.set(k.slice('SCHILY.xattr.'.length), v);
      else if (k.startsWith('LIBARCHIVE.xattr.')) header.xattrs.set(decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length)), Buffer.from(s(), 'base64'));
    }
    // Pre-POSIX archives mark directories only by a trailing slash on a regular entry.
    if (type === 'file' && flag !== '7' && header.name.endsWith('/')) {
      type = header.type = 'directory';
      header.size = 0;
    }
    pax = null;
    longName = null;
    longLink = null;
    // Only regular files have a body; a size on anything else is data to skip.
    const dataSize = type === 'file' ? header.size : flag === '1' ? 0 : size;
    let consumed = 0;
    const body = (async function* () {
      for await (const c of r.stream(type === 'file' ? header.size : 0)) {
        consumed += c.length;
        yield c;
      }
    })();
    yield { header, offset: r.position, body };
    // Skip what the consumer left unread, then the padding.
    await body.return(undefined);
    if (dataSize > consumed) await r.skip(dataSize - consumed);
    const pad = Math.ceil(dataSize / BLOCK) * BLOCK - dataSize;
    if (pad > 0) await r.skip(pad);
  }
  await r.drain();
}

// ---- writing ----

export interface TarWriteEntry {
  name: string;
  type: TarEntryType;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

const FLAGS: Record<TarEntryType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', directory: '5', fifo: '6' };

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function octal(b: Buffer, start: number, len: number, v: number): void {
  b.write(v.toString(8).padStart(len - 1, '0') + '\0', start, len, 'latin1');
}

function ustarBlock(e: TarWriteEntry, name: string, linkname: string, flag: string, size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  octal(h, 100, 8, e.mode ?? (e.type === 'directory' ? 0o755 : 0o644));
  octal(h, 108, 8, e.uid ?? 0);
  octal(h, 116, 8, e.gid ?? 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, Math.floor(e.mtime ?? 0));
  h[156] = flag.charCodeAt(0);
  h.write(linkname, 157, 100, 'utf8');
  h.write('ustar\x0000', 257, 8, 'latin1');
  octal(h, 329, 8, e.devmajor ?? 0);
  octal(h, 337, 8, e.devminor ?? 0);
  h.fill(32, 148, 156);
  let sum = 0;
  for (const x of h) sum += x;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

/** The header block(s) of one entry: a PAX header first when names are long or xattrs set. */
export function tarHeader(e: TarWriteEntry): Buffer {
  const size = e.type === 'file' ? (e.size ?? 0) : 0;
  const linkname = e.linkname ?? '';
  const records: Buffer[] = [];
  if (Buffer.byteLength(e.name) > 100) records.push(paxRecord('path', Buffer.from(e.name)));
  if (Buffer.byteLength(linkname) > 100) records.push(paxRecord('linkpath', Buffer.from(linkname)));
  for (const [k, v] of e.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${k}`, v));
  const main = ustarBlock(e, e.name.slice(0, 100), linkname.slice(0, 100), FLAGS[e.type], size);
  if (records.length === 0) return main;
  const data = Buffer.concat(records);
  const paxHeader = ustarBlock({ name: 'PaxHeader', type: 'file', mode: 0o644 }, 'PaxHeader', '', 'x', data.length);
  return Buffer.concat([paxHeader, data, tarPadding(data.length), main]);
}

/** Zero bytes that round an entry's data up to a whole block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The two zero blocks that end an archive. */
export const TAR_END = Buffer.alloc(2 * BLOCK);

/** A whole archive in memory (test fixtures, small layers). */
export function buildTar(entries: Array<TarWriteEntry & { data?: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? EMPTY;
    parts.push(tarHeader({ ...e, size: e.type === 'file' ? data.length : 0 }));
    if (e.type === 'file') parts.push(data, tarPadding(data.length));
  }
  parts.push(TAR_END);
  return Buffer.concat(parts);
}
