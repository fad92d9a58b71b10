/**
 * SPDY/3.1 frames on the wire (SPDY Protocol Draft 3.1, section 2.2 and 2.6): the encoders,
 * which are pure and synchronous, the uncompressed name/value header block, and the incremental
 * reader of a byte stream that the session feeds socket chunks into.
 *
 * Every frame has an 8-byte head. A control frame: 1 bit set, 15 bits version (3), 16 bits
 * type, 8 bits flags, 24 bits length. A DATA frame: 1 bit clear, 31 bits stream id, 8 bits
 * flags, 24 bits length. The 24-bit length caps any frame at 16 MiB - 1 by construction.
 */

export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

/** FLAG_FIN of DATA, SYN_STREAM, SYN_REPLY and HEADERS frames. */
export const FLAG_FIN = 0x01;
/** FLAG_UNIDIRECTIONAL of SYN_STREAM: the receiver must not send on the stream. */
export const FLAG_UNIDIRECTIONAL = 0x02;

/** RST_STREAM status codes (2.6.3). */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const;

/** GOAWAY status codes (2.6.6). */
export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

/** SETTINGS id of the initial per-stream window (2.6.4). */
export const SETTINGS_INITIAL_WINDOW_SIZE = 7;

export const MAX_STREAM_ID = 0x7fffffff;
/** The largest payload the 24-bit length field can carry. */
export const MAX_FRAME_PAYLOAD = 0xffffff;

export const FRAME_HEAD_LENGTH = 8;

function controlHead(type: number, flags: number, length: number): Buffer {
  const head = Buffer.allocUnsafe(FRAME_HEAD_LENGTH);
  head.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt8(flags, 4);
  head.writeUIntBE(length, 5, 3);
  return head;
}

function checkPayload(length: number): void {
  if (length > MAX_FRAME_PAYLOAD) throw new RangeError(`SPDY frame payload of ${length} bytes is over the 24-bit limit`);
}

/** SYN_STREAM: stream id, associated-to id, 3 bits priority, 5 unused, 8 bits slot, then the compressed header block. */
export function encodeSynStream(streamId: number, flags: number, headerBlock: Buffer, priority = 0, associatedTo = 0): Buffer {
  checkPayload(10 + headerBlock.length);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt32BE(streamId & MAX_STREAM_ID, 0);
  fixed.writeUInt32BE(associatedTo & MAX_STREAM_ID, 4);
  fixed.writeUInt8((priority & 0x7) << 5, 8);
  return Buffer.concat([controlHead(FrameType.SYN_STREAM, flags, 10 + headerBlock.length), fixed, headerBlock]);
}

function encodeStreamHeaders(type: number, streamId: number, flags: number, headerBlock: Buffer): Buffer {
  checkPayload(4 + headerBlock.length);
  const id = Buffer.allocUnsafe(4);
  id.writeUInt32BE(streamId & MAX_STREAM_ID, 0);
  return Buffer.concat([controlHead(type, flags, 4 + headerBlock.length), id, headerBlock]);
}

export function encodeSynReply(streamId: number, flags: number, headerBlock: Buffer): Buffer {
  return encodeStreamHeaders(FrameType.SYN_REPLY, streamId, flags, headerBlock);
}

export function encodeHeaders(streamId: number, flags: number, headerBlock: Buffer): Buffer {
  return encodeStreamHeaders(FrameType.HEADERS, streamId, flags, headerBlock);
}

function encodeTwoWords(type: number, first: number, second: number): Buffer {
  const frame = controlHead(type, 0, 8);
  const body = Buffer.allocUnsafe(8);
  body.writeUInt32BE(first >>> 0, 0);
  body.writeUInt32BE(second >>> 0, 4);
  return Buffer.concat([frame, body]);
}

export function encodeRstStream(streamId: number, status: number): Buffer {
  return encodeTwoWords(FrameType.RST_STREAM, streamId & MAX_STREAM_ID, status);
}

export function encodeGoAway(lastGoodStreamId: number, status: number): Buffer {
  return encodeTwoWords(FrameType.GOAWAY, lastGoodStreamId & MAX_STREAM_ID, status);
}

/** WINDOW_UPDATE; stream id 0 is the session window of SPDY/3.1. */
export function encodeWindowUpdate(streamId: number, delta: number): Buffer {
  return encodeTwoWords(FrameType.WINDOW_UPDATE, streamId & MAX_STREAM_ID, delta & 0x7fffffff);
}

export function encodePing(id: number): Buffer {
  const frame = Buffer.alloc(12);
  controlHead(FrameType.PING, 0, 4).copy(frame, 0);
  frame.writeUInt32BE(id >>> 0, 8);
  return frame;
}

export function encodeSettings(entries: Array<{ id: number; value: number; flags?: number }>): Buffer {
  const body = Buffer.alloc(4 + entries.length * 8);
  body.writeUInt32BE(entries.length, 0);
  entries.forEach((e, i) => {
    body.writeUInt8(e.flags ?? 0, 4 + i * 8);
    body.writeUIntBE(e.id, 5 + i * 8, 3);
    body.writeUInt32BE(e.value >>> 0, 8 + i * 8);
  });
  return Buffer.concat([controlHead(FrameType.SETTINGS, 0, body.length), body]);
}

export function encodeDataHead(streamId: number, flags: number, length: number): Buffer {
  checkPayload(length);
  const head = Buffer.allocUnsafe(FRAME_HEAD_LENGTH);
  head.writeUInt32BE(streamId & MAX_STREAM_ID, 0);
  head.writeUInt8(flags, 4);
  head.writeUIntBE(length, 5, 3);
  return head;
}

export function encodeData(streamId: number, flags: number, payload: Buffer): Buffer {
  return Buffer.concat([encodeDataHead(streamId, flags, payload.length), payload]);
}

/** Headers as the session hands them out: lower-case names, values as sent (several values of one name stay NUL-separated). */
export type SpdyHeaders = Record<string, string>;

/** The uncompressed name/value block of SPDY/3 (2.6.10): a 32-bit count, then per pair a 32-bit length and the name, a 32-bit length and the value. */
export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const entries = Object.entries(headers);
  const parts: Buffer[] = [];
  const count = Buffer.allocUnsafe(4);
  count.writeUInt32BE(entries.length, 0);
  parts.push(count);
  for (const [name, value] of entries) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(String(value), 'utf8');
    if (n.length === 0) throw new TypeError('SPDY header names must not be empty');
    const nl = Buffer.allocUnsafe(4);
    nl.writeUInt32BE(n.length, 0);
    const vl = Buffer.allocUnsafe(4);
    vl.writeUInt32BE(v.length, 0);
    parts.push(nl, n, vl, v);
  }
  return Buffer.concat(parts);
}

export class HeaderBlockError extends Error {}

/**
 * Decodes an uncompressed header block, refusing what the draft calls a protocol error (an
 * empty name, a name twice, a length past the end) and any bytes after the last pair. The
 * result has no prototype, so a header named __proto__ is just a header.
 */
export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  const headers: SpdyHeaders = Object.create(null) as SpdyHeaders;
  const need = (offset: number, n: number): void => {
    if (offset + n > block.length) throw new HeaderBlockError('SPDY header block is truncated');
  };
  need(0, 4);
  const count = block.readUInt32BE(0);
  // Every pair takes at least 8 bytes of lengths, so a count the block cannot hold is refused before any work.
  if (count * 8 > block.length - 4) throw new HeaderBlockError(`SPDY header block claims ${count} pairs in ${block.length} bytes`);
  let offset = 4;
  for (let i = 0; i < count; i++) {
    need(offset, 4);
    const nameLength = block.readUInt32BE(offset);
    offset += 4;
    need(offset, nameLength);
    if (nameLength === 0) throw new HeaderBlockError('SPDY header block has an empty name');
    const name = block.toString('utf8', offset, offset + nameLength).toLowerCase();
    offset += nameLength;
    need(offset, 4);
    const valueLength = block.readUInt32BE(offset);
    offset += 4;
    need(offset, valueLength);
    const value = block.toString('utf8', offset, offset + valueLength);
    offset += valueLength;
    if (Object.prototype.hasOwnProperty.call(headers, name)) throw new HeaderBlockError(`SPDY header block has ${name} twice`);
    headers[name] = value;
  }
  if (offset !== block.length) throw new HeaderBlockError('SPDY header block has bytes after its last pair');
  return headers;
}

/** A frame head as read off the wire. */
export type FrameHead = { control: true; version: number; type: number; flags: number; length: number } | { control: false; streamId: number; flags: number; length: number };

export function decodeFrameHead(head: Buffer): FrameHead {
  const first = head.readUInt32BE(0);
  const flags = head.readUInt8(4);
  const length = head.readUIntBE(5, 3);
  if (first & 0x80000000) return { control: true, version: (first >>> 16) & 0x7fff, type: first & 0xffff, flags, length };
  return { control: false, streamId: first & MAX_STREAM_ID, flags, length };
}

/**
 * The bytes received and not yet consumed, as the socket delivered them (no copy until a
 * caller needs contiguous bytes).
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0; // offset into chunks[0]
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The first n bytes, contiguous, without consuming them (n <= length). */
  peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    for (let i = 0; copied < n; i++) {
      const c = this.chunks[i];
      const start = i === 0 ? this.head : 0;
      copied += c.copy(out, copied, start, Math.min(c.length, start + n - copied));
    }
    return out;
  }

  /** Consumes and returns exactly n contiguous bytes (n <= length). */
  take(n: number): Buffer {
    const out = this.peek(n);
    this.skip(n);
    return out;
  }

  /** Consumes and returns up to n bytes, no more than the first chunk holds (no copy). */
  takeSome(n: number): Buffer {
    const first = this.chunks[0];
    const end = Math.min(first.length, this.head + n);
    const out = first.subarray(this.head, end);
    this.skip(end - this.head);
    return out;
  }

  skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const first = this.chunks[0];
      const left = first.length - this.head;
      if (n < left) {
        this.head += n;
        return;
      }
      n -= left;
      this.chunks.shift();
      this.head = 0;
    }
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.length = 0;
  }
}
