/**
 * The CRI socket's front door. grpc-go clients before Kubernetes 1.30 (kubelet's CRI client,
 * crictl and critest 1.26 among them) send the unix socket's path as the HTTP/2
 * `:authority`, and Node's HTTP/2 (nghttp2) resets any stream whose authority holds a "/".
 * So connections are accepted here and looked at before grpc-js sees them: a connection
 * whose first request carries a valid authority is handed over as it is (no cost past the
 * first request); one that carries a path is handed over through a rewriter that decodes
 * each request's header block (HPACK, with the client's dynamic table), puts "localhost"
 * in the authority, and encodes it again for the server. Responses are never touched.
 *
 * gRPC clients wait for the server's SETTINGS before their first request, so the front
 * door sends an empty SETTINGS frame (all defaults) at once; the client's ACK of it is
 * taken out of the stream, since the HTTP/2 session behind never sent that frame and
 * sends its own SETTINGS when it takes the connection over.
 */
import net from 'node:net';
import { Duplex } from 'node:stream';
import hpack from 'hpack.js';

const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const FRAME_HEADERS = 0x1;
const FRAME_CONTINUATION = 0x9;
const FRAME_SETTINGS = 0x4;
const FLAG_ACK = 0x1;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/**
 * Node's HTTP/2 default SETTINGS_MAX_FRAME_SIZE: the server never accepts larger frames.
 * Both HPACK tables stay at the 4096-byte default the server advertises, which bounds the
 * client's encoder and ours alike.
 */
const maxFrame = 16384;
/** How long a client may take to send its first request before it is dropped. */
const sniffTimeoutMs = 30_000;

/** An authority nghttp2 accepts: host[:port] with no path characters. */
export function validAuthority(a: string): boolean {
  return /^[A-Za-z0-9\-._~!$&'()*+,;=:[\]%@]*$/.test(a);
}

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
  /** the whole frame, header and payload, as it came */
  bytes: Buffer;
}

/** Splits HTTP/2 frames off the front of a buffer; returns them and what is left. */
function takeFrames(buf: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let off = 0;
  while (buf.length - off >= 9) {
    const len = buf.readUIntBE(off, 3);
    if (buf.length - off < 9 + len) break;
    frames.push({
      type: buf[off + 3],
      flags: buf[off + 4],
      stream: buf.readUInt32BE(off + 5) & 0x7fffffff,
      payload: buf.subarray(off + 9, off + 9 + len),
      bytes: buf.subarray(off, off + 9 + len),
    });
    off += 9 + len;
  }
  return { frames, rest: buf.subarray(off) };
}

function frameBytes(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** The header block fragment of a HEADERS frame, without padding and priority. */
function headersFragment(f: Frame): Buffer {
  let p = f.payload;
  let pad = 0;
  if (f.flags & FLAG_PADDED) {
    pad = p[0];
    p = p.subarray(1);
  }
  if (f.flags & FLAG_PRIORITY) p = p.subarray(5);
  return p.subarray(0, p.length - pad);
}

type Header = { name: string; value: string; neverIndex?: boolean };

/**
 * Rewrites the client-to-server byte stream: header blocks are decoded with the client's
 * HPACK state and encoded again with ours (so the server's decoder follows our encoder),
 * with a path authority replaced. Every other frame passes through as it is.
 */
class RequestRewriter {
  private pending: Buffer = Buffer.alloc(0);
  private sawPreface = false;
  private readonly decoder = hpack.decompressor.create({ table: { size: 4096 } });
  private readonly encoder = hpack.compressor.create({ table: { size: 4096 } });
  private block: { stream: number; flags: number; parts: Buffer[] } | null = null;
  /** the client's ACK of the front door's SETTINGS is still to come (and to be dropped) */
  private ackPending = true;

  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: Buffer[] = [];
    if (!this.sawPreface) {
      if (this.pending.length < preface.length) return out;
      out.push(this.pending.subarray(0, preface.length));
      this.pending = this.pending.subarray(preface.length);
      this.sawPreface = true;
    }
    const { frames, rest } = takeFrames(this.pending);
    this.pending = rest;
    for (const f of frames) {
      if (this.ackPending && f.type === FRAME_SETTINGS && f.flags & FLAG_ACK) {
        this.ackPending = false;
        continue;
      }
      if (f.type === FRAME_HEADERS) {
        this.block = { stream: f.stream, flags: f.flags & FLAG_END_STREAM, parts: [headersFragment(f)] };
      } else if (f.type === FRAME_CONTINUATION && this.block) {
        this.block.parts.push(f.payload);
      } else {
        out.push(f.bytes);
        continue;
      }
      if (f.flags & FLAG_END_HEADERS) {
        out.push(...this.reencode(this.block!));
        this.block = null;
      }
    }
    return out;
  }

  private reencode(b: { stream: number; flags: number; parts: Buffer[] }): Buffer[] {
    this.decoder.write(Buffer.concat(b.parts));
    this.decoder.execute();
    const headers: Header[] = [];
    for (let h = this.decoder.read() as Header | null; h !== null; h = this.decoder.read() as Header | null) {
      headers.push(h.name === ':authority' && !validAuthority(h.value) ? { name: h.name, value: 'localhost' } : h);
    }
    this.encoder.write(headers.map((h) => ({ name: h.name, value: h.value, neverIndex: h.neverIndex ?? false })));
    const block = this.encoder.read() as Buffer;
    const frames: Buffer[] = [];
    for (let off = 0; off < block.length || off === 0; off += maxFrame) {
      const part = block.subarray(off, off + maxFrame);
      const last = off + maxFrame >= block.length;
      frames.push(frameBytes(off === 0 ? FRAME_HEADERS : FRAME_CONTINUATION, (off === 0 ? b.flags : 0) | (last ? FLAG_END_HEADERS : 0), b.stream, part));
      if (block.length === 0) break;
    }
    return frames;
  }
}

interface Sniffed {
  /** the first request's header block is complete */
  done: boolean;
  authority: string | null;
  /** the client's ACK of our SETTINGS came before its first request: its byte range */
  ack: { start: number; end: number } | null;
}

/** What the bytes of a new connection say so far: the first authority, where the ACK is. */
function sniff(buf: Buffer): Sniffed {
  const none: Sniffed = { done: false, authority: null, ack: null };
  if (buf.length < preface.length) return none;
  if (!buf.subarray(0, preface.length).equals(preface)) return { ...none, done: true };
  let off = preface.length;
  let ack: Sniffed['ack'] = null;
  const parts: Buffer[] = [];
  while (buf.length - off >= 9) {
    const len = buf.readUIntBE(off, 3);
    if (buf.length - off < 9 + len) break;
    const f: Frame = { type: buf[off + 3], flags: buf[off + 4], stream: 0, payload: buf.subarray(off + 9, off + 9 + len), bytes: buf.subarray(off, off + 9 + len) };
    if (f.type === FRAME_SETTINGS && f.flags & FLAG_ACK && ack === null) ack = { start: off, end: off + 9 + len };
    off += 9 + len;
    if (f.type === FRAME_HEADERS) parts.push(headersFragment(f));
    else if (f.type === FRAME_CONTINUATION && parts.length > 0) parts.push(f.payload);
    else continue;
    if (f.flags & FLAG_END_HEADERS) {
      const d = hpack.decompressor.create({ table: { size: 4096 } });
      d.write(Buffer.concat(parts));
      d.execute();
      let authority: string | null = null;
      for (let h = d.read() as Header | null; h !== null; h = d.read() as Header | null) if (h.name === ':authority') authority = h.value;
      return { done: true, authority, ack };
    }
  }
  return { ...none, ack };
}

/** A duplex over `socket` whose readable side is the rewritten client stream. */
function rewritingDuplex(socket: net.Socket, already: Buffer): Duplex {
  // It reads the connection from its first byte, so that its HPACK state is the client's.
  const rewriter = new RequestRewriter();
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    // The HTTP/2 session writes a response as several buffers at once (HEADERS, DATA,
    // trailers); one write each was a syscall each, 18% of a rewritten call's CPU. Corked,
    // the socket sends them in one writev.
    writev(chunks, cb) {
      socket.cork();
      for (let i = 0; i < chunks.length - 1; i++) socket.write(chunks[i]!.chunk as Buffer);
      socket.write(chunks[chunks.length - 1]!.chunk as Buffer, cb);
      socket.uncork();
    },
    final(cb) {
      socket.end(cb);
    },
    destroy(err, cb) {
      socket.destroy(err ?? undefined);
      cb(err);
    },
  });
  const feed = (chunk: Buffer) => {
    try {
      // One push per chunk read, not one per frame: each push is a read callback into the
      // HTTP/2 session.
      const out = rewriter.push(chunk);
      if (out.length > 0 && !duplex.push(out.length === 1 ? out[0] : Buffer.concat(out))) socket.pause();
    } catch (e) {
      duplex.destroy(e as Error);
    }
  };
  feed(already);
  socket.on('data', feed);
  socket.on('end', () => duplex.push(null));
  socket.on('error', (e) => duplex.destroy(e));
  socket.on('close', () => duplex.destroy());
  return duplex;
}

/**
 * Accepts CRI connections on `socketPath` and injects each into grpc-js, rewritten only
 * when its first request carries a path as its authority.
 */
export function frontDoor(inject: (conn: Duplex) => void): net.Server {
  return net.createServer((socket) => {
    let seen: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), sniffTimeoutMs);
    socket.write(frameBytes(FRAME_SETTINGS, 0, 0, Buffer.alloc(0)));
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const s = sniff(seen);
      if (!s.done) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      if (s.ack !== null && (s.authority === null || validAuthority(s.authority))) {
        // As it is, less our ACK: give the bytes back; the HTTP/2 session reads the socket.
        socket.unshift(Buffer.concat([seen.subarray(0, s.ack.start), seen.subarray(s.ack.end)]));
        inject(socket);
      } else {
        inject(rewritingDuplex(socket, seen));
      }
    };
    socket.on('data', onData);
    socket.once('error', () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
  });
}
