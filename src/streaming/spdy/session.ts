/**
 * SPDY/3.1 sessions and streams, for nodecri's streaming server (server role) and for our own
 * test and bench clients (client role).
 *
 * Why our own framing and not the `spdy-transport` package (3.0.0, 2018, unmaintained since):
 * its SPDY/3.1 framer makes every DATA frame wait for send window (framer.js: `window.send.update
 * (-len, cb)` queues the frame until a WINDOW_UPDATE refills the window), and the peers that
 * matter never send WINDOW_UPDATE: kubectl, crictl, critest and kubelet all speak through
 * github.com/moby/spdystream, whose framer parses WINDOW_UPDATE and SETTINGS and then drops
 * them ("unhandled frame type") and never sends either. A stream of spdy-transport would stall
 * after its first 64 KiB to any of them. It also reuses zlib contexts across connections from a
 * pool, where SPDY needs one fresh context per direction per connection. So this file is written
 * against the SPDY Protocol Draft 3.1 and, first, against what spdystream actually does:
 *
 * - Frames: spdystream sends SYN_STREAM, SYN_REPLY, RST_STREAM, DATA, PING, GOAWAY and HEADERS,
 *   each field by a separate write (we must reassemble frames from any fragmentation). It
 *   never sends SETTINGS or WINDOW_UPDATE; it parses and ignores both. Unknown control frame
 *   types are an error to it, so we send none.
 * - Flow control: since the peer ignores windows, socket backpressure is the flow control.
 *   Inbound, a stream whose reader is slow stops the whole session reading its socket (its
 *   readable buffer is bounded by `initialWindow`), as spdystream itself blocks its frame
 *   workers; the server role also sends WINDOW_UPDATE as data reaches a stream's buffer, for
 *   a peer that honours windows (the stalled socket, not the window, is what bounds it). Outbound, a writer waits while the socket holds more than
 *   `outboundHighWaterMark` bytes; the peer's windows are tracked and enforced only once the
 *   peer shows it does flow control (it sent a WINDOW_UPDATE or SETTINGS_INITIAL_WINDOW_SIZE).
 *   The receive window is not enforced on the peer: spdystream would overrun it at once.
 * - Header blocks: zlib with the SPDY/3 dictionary, one stateful context per direction per
 *   connection, a sync flush after each block (header-compression.ts); names lower-case.
 *   zlib calls back asynchronously, so inbound frame processing stops at a header block until
 *   it is inflated, and outbound frames queue behind a block being deflated: order is kept both
 *   ways. A block that does not inflate, or inflates past `maxHeaderBlockLength`, is fatal.
 * - Stream ids: the client opens odd ids from 1, the server even from 2, each strictly
 *   increasing; a SYN_STREAM with an id not above the last one gets RST_STREAM PROTOCOL_ERROR,
 *   as spdystream answers. Ping ids: ours have our parity (odd client, even server); a ping of
 *   the other parity is echoed.
 * - Half close: each side ends its half with FIN (an empty DATA frame with FLAG_FIN, as
 *   spdystream's Close() writes, or FIN on SYN_STREAM/SYN_REPLY/HEADERS); a stream is forgotten
 *   once both halves are closed or it is reset. Data for a stream we do not know is dropped,
 *   as spdystream drops it.
 * - RST_STREAM from the peer destroys the stream: with an error (code ERR_SPDY_STREAM_RESET),
 *   unless our half was already closed, when the peer is only discarding what it no longer
 *   wants (kubectl resets every stream it has not finished when it closes). Errors caused by
 *   the peer go only to streams with an 'error' listener (destroyWith): a client must not be
 *   able to crash the daemon through a stream nobody has started listening to. Destroying a stream
 *   locally before both halves closed sends RST_STREAM CANCEL, as spdystream's Reset().
 * - GOAWAY from the peer: no new streams either way; the streams open go on, and the socket is
 *   ended when the last is gone (spdystream closes the connection itself once it has read a
 *   GOAWAY). Our close() sends GOAWAY with the last stream id we accepted, then ends the socket.
 * - A socket that ends or fails destroys every stream still open with an error
 *   (ERR_SPDY_CONNECTION_LOST), once the frames that came before the end are handled (they
 *   may wait for a turn after a SYN_REPLY, or for zlib; not for a reader that reads nothing); the session emits 'terminated' then (and on destroy() or a
 *   protocol error), before 'close', which waits for the socket: a peer that half-closed and
 *   reads nothing more would hold that off, and it is destroyed after closeGraceMs. A frame that breaks the protocol gets GOAWAY PROTOCOL_ERROR, an
 *   'error' event (only when someone listens: a hostile peer must not crash the daemon) and the
 *   end of the connection.
 * - Bounds against a hostile peer: control frames of at most maxControlFrameLength (DATA is
 *   streamed through, never buffered whole), header blocks that inflate to at most
 *   maxHeaderBlockLength, at most maxConcurrentStreams of its streams open whose headers hold
 *   at most maxPeerHeaderBytes together (each stream keeps its headers), and no reading
 *   while our answers to its frames (PING, SYN_REPLY, RST_STREAM) fill the socket past four
 *   times outboundHighWaterMark. Unknown control frame types are skipped (draft 3.1, 2.2.1).
 */
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { Duplex } from 'node:stream';
import {
  ByteQueue,
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  FRAME_HEAD_LENGTH,
  FrameType,
  GoAwayStatus,
  HeaderBlockError,
  MAX_STREAM_ID,
  RstStatus,
  SETTINGS_INITIAL_WINDOW_SIZE,
  type SpdyHeaders,
  SPDY_VERSION,
  decodeFrameHead,
  decodeHeaderBlock,
  encodeDataHead,
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

export type { SpdyHeaders } from './frames';
export { RstStatus, GoAwayStatus } from './frames';

const DEFAULT_WINDOW = 64 * 1024;

export interface SpdySessionOptions {
  role: 'server' | 'client';
  /** The window SPDY/3.1 starts every stream with, and the bound of each stream's read buffer. Default 64 KiB. */
  initialWindow?: number;
  /** Control frames longer than this are a protocol error (they are buffered whole). Default 1 MiB. */
  maxControlFrameLength?: number;
  /** A header block that inflates past this is a protocol error. Default 64 KiB in the server role (kubelet's clients send a few dozen bytes), 1 MiB in the client role. */
  maxHeaderBlockLength?: number;
  /** What the headers of the peer's open streams may hold together (names and values, bytes); a SYN_STREAM past it is refused (RST_STREAM REFUSED_STREAM). Default 1 MiB. */
  maxPeerHeaderBytes?: number;
  /** The largest DATA payload this side sends in one frame. Default 64 KiB. */
  maxDataFrameLength?: number;
  /** Writers wait while the socket has more than this many bytes buffered. Default 256 KiB. */
  outboundHighWaterMark?: number;
  /** Send WINDOW_UPDATE as streams are read. Default: in the server role (spdystream, whom the client role imitates, sends none). */
  sendWindowUpdates?: boolean;
  /** Streams the peer may have open at once; more are refused (RST_STREAM REFUSED_STREAM). Default 1000. */
  maxConcurrentStreams?: number;
  /** After close() has ended our side, or the peer ended its side, how long the peer has to close (or take what is queued) before the socket is destroyed. Default 5 s. */
  closeGraceMs?: number;
}

export type SpdyErrorCode = 'ERR_SPDY_PROTOCOL' | 'ERR_SPDY_STREAM_RESET' | 'ERR_SPDY_CONNECTION_LOST' | 'ERR_SPDY_GOAWAY' | 'ERR_SPDY_SESSION_CLOSED';

export class SpdyError extends Error {
  constructor(
    readonly code: SpdyErrorCode,
    message: string,
    /** the RST_STREAM or GOAWAY status, where the error comes from one */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'SpdyError';
  }
}

interface PendingOpen {
  resolve(s: SpdyStream): void;
  reject(e: Error): void;
}

/** What the session knows of one stream; the stream's own Duplex state stays Node's. */
interface StreamState {
  /** our half is closed: FIN sent (or queued), or the peer opened the stream unidirectional */
  localFinished: boolean;
  /** the peer's half is closed: FIN received */
  remoteFinished: boolean;
  /** SYN_REPLY sent (server) or received (client) */
  replied: boolean;
  /** an RST_STREAM went one way or the other */
  reset: boolean;
  /** the user has the stream (the 'stream' event or openStream's promise) */
  handedOut: boolean;
  open: PendingOpen | null;
  /** what the peer still lets us send, once it does flow control */
  sendWindow: number;
  /** what its SYN_STREAM's headers hold (names and values), counted against maxPeerHeaderBytes for the peer's streams */
  headerBytes: number;
  /** DATA bytes received / acknowledged by WINDOW_UPDATE */
  received: number;
  acknowledged: number;
}

/**
 * One SPDY stream: the bytes of its DATA frames, both halves closed by FIN (end()). Emits
 * 'headers' (SpdyHeaders) for a HEADERS frame. Every stream the peer writes to must be read
 * (or destroyed): a stream whose buffer is full stops the whole session reading, which is how
 * a peer that ignores windows (spdystream) is slowed down.
 */
export class SpdyStream extends Duplex {
  readonly id: number;
  /** The headers of its SYN_STREAM, lower-case names, as the peer (or we) sent them. */
  readonly headers: SpdyHeaders;
  /** The headers of the SYN_REPLY (the client role's streams); empty until then. */
  replyHeaders: SpdyHeaders = Object.create(null) as SpdyHeaders;
  /** Why the peer or the wire ended the stream before both halves closed (also when no 'error' listener heard it); null otherwise. */
  abortError: SpdyError | null = null;
  /** @internal */
  readonly state: StreamState;

  /** @internal: streams are made by SpdySession only */
  constructor(
    private readonly session: SpdySession,
    id: number,
    headers: SpdyHeaders,
    readBufferBound: number,
    sendWindow: number,
  ) {
    // 128 KiB of writes may wait in a stream: with Node's 16 KiB default every 64 KiB chunk
    // piped in (a pod socket's read) paused and resumed its source, a readStop/readStart pair
    // per chunk (port-forward: 2.5 against 1.55 ms of CPU per MiB). The socket's own outbound
    // mark still bounds what the session holds.
    super({ allowHalfOpen: true, readableHighWaterMark: readBufferBound, writableHighWaterMark: 128 * 1024, decodeStrings: true });
    this.id = id;
    this.headers = headers;
    this.state = {
      localFinished: false,
      remoteFinished: false,
      replied: false,
      reset: false,
      handedOut: false,
      open: null,
      sendWindow,
      headerBytes: 0,
      received: 0,
      acknowledged: 0,
    };
  }

  /** Ends the stream abruptly with RST_STREAM (CANCEL unless told), without an error on this side. */
  reset(status: number = RstStatus.CANCEL): void {
    this.session._resetStream(this, status);
  }

  override _read(): void {
    this.session._onStreamRead(this);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.session._sendData(this, chunk, false, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.state.localFinished) return callback();
    this.session._sendData(this, Buffer.alloc(0), true, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.session._onStreamDestroyed(this);
    callback(error);
  }
}

/** A frame waiting behind a header block's compression: its bytes, or its head and payload apart (DATA). */
type OutboundSlot = { bytes: Buffer | Buffer[] | null };

export class SpdySession extends EventEmitter {
  readonly role: 'server' | 'client';
  private readonly initialWindow: number;
  private readonly maxControlFrameLength: number;
  private readonly maxDataFrameLength: number;
  private readonly outboundHighWaterMark: number;
  private readonly sendWindowUpdates: boolean;
  private readonly maxConcurrentStreams: number;
  private readonly maxPeerHeaderBytes: number;
  private peerHeaderBytes = 0;
  private readonly closeGraceMs: number;
  /**
   * What the socket may hold before the session stops reading: answers to the peer's frames
   * (PING, SYN_REPLY, RST_STREAM) are queued without waiting, and a peer that sends those
   * without reading ours must not grow that queue without bound.
   */
  private readonly outboundBacklogLimit: number;
  private peerStreamCount = 0;

  private readonly streams = new Map<number, SpdyStream>();
  private nextStreamId: number;
  /** the highest stream id the peer opened and we accepted (GOAWAY's last-good-stream-id) */
  private lastPeerStreamId = 0;
  private nextPingId: number;
  private readonly pings = new Map<number, { resolve(): void; reject(e: Error): void }>();

  private readonly compressor = new HeaderCompressor();
  private readonly decompressor: HeaderDecompressor;

  // Inbound: bytes not yet parsed, the DATA frame being delivered, an unknown frame being skipped.
  private readonly inbound = new ByteQueue();
  private dataLeft = 0;
  private dataStream: SpdyStream | undefined;
  private dataFlags = 0;
  private skipLeft = 0;
  private inflating = false;
  /** a stream was just handed to an openStream caller: see onSynReply */
  private yielding = false;
  /** streams whose read buffer is full: the session reads no more until they are read */
  private readonly stalled = new Set<SpdyStream>();
  private pumping = false;
  private pumpAgain = false;
  private sessionUnacknowledged = 0;

  // Outbound: frames queued behind a header block being compressed, writers waiting for room.
  private readonly outPending: OutboundSlot[] = [];
  private writableWaiters: Array<() => void> = [];
  private windowWaiters: Array<() => void> = [];
  private peerFlowControl = false;
  private peerInitialWindow = DEFAULT_WINDOW;
  private sessionSendWindow = DEFAULT_WINDOW;

  /** we sent GOAWAY */
  private goingAway = false;
  /** the peer sent GOAWAY */
  private peerWentAway = false;
  private dead = false;
  private closeEmitted = false;
  /** the socket's readable side ended (the peer's FIN) */
  private peerEnded = false;
  private socketClosed = false;

  constructor(
    private readonly socket: Duplex,
    opts: SpdySessionOptions,
  ) {
    super();
    this.role = opts.role;
    this.initialWindow = opts.initialWindow ?? DEFAULT_WINDOW;
    this.maxControlFrameLength = opts.maxControlFrameLength ?? 1024 * 1024;
    this.maxDataFrameLength = opts.maxDataFrameLength ?? 64 * 1024;
    this.outboundHighWaterMark = opts.outboundHighWaterMark ?? 256 * 1024;
    this.sendWindowUpdates = opts.sendWindowUpdates ?? opts.role === 'server';
    this.maxConcurrentStreams = opts.maxConcurrentStreams ?? 1000;
    this.closeGraceMs = opts.closeGraceMs ?? 5000;
    this.outboundBacklogLimit = 4 * this.outboundHighWaterMark;
    this.maxPeerHeaderBytes = opts.maxPeerHeaderBytes ?? 1024 * 1024;
    this.decompressor = new HeaderDecompressor(opts.maxHeaderBlockLength ?? (opts.role === 'server' ? 64 * 1024 : 1024 * 1024));
    this.nextStreamId = opts.role === 'client' ? 1 : 2;
    this.nextPingId = opts.role === 'client' ? 1 : 2;

    // SPDY/3.1 windows start at 64 KiB; a peer that does flow control learns ours only from SETTINGS.
    if (this.sendWindowUpdates && this.initialWindow !== DEFAULT_WINDOW) {
      this.writeFrame(encodeSettings([{ id: SETTINGS_INITIAL_WINDOW_SIZE, value: this.initialWindow }]));
    }

    socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    socket.on('drain', () => {
      this.kickWriters();
      this.pump();
    });
    socket.on('end', () => this.onSocketEnd());
    socket.on('error', (err: Error) => this.terminate(new SpdyError('ERR_SPDY_CONNECTION_LOST', `SPDY connection failed: ${err.message}`)));
    socket.on('close', () => {
      this.socketClosed = true;
      if (!this.endDeferred()) this.onSocketClose();
    });
    // Frames are written whole, so Nagle's algorithm only delays the small ones (a WINDOW_UPDATE
    // or PING behind a DATA frame waits for the peer's delayed ACK, 40 ms); Go's net package
    // sets TCP_NODELAY on every connection too.
    (socket as Partial<net.Socket>).setNoDelay?.(true);
    // A socket handed over after an HTTP upgrade may have been left paused.
    socket.resume();
  }

  /** Streams open now (for tests and diagnostics). */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Bytes received and not yet parsed, and whether the session has stopped reading its socket (for tests and diagnostics). */
  get inboundBuffered(): number {
    return this.inbound.length;
  }
  get inboundPaused(): boolean {
    return this.blocked();
  }

  /** Opens a stream (SYN_STREAM); resolves when the peer's SYN_REPLY arrives. */
  openStream(headers: SpdyHeaders, opts: { fin?: boolean } = {}): Promise<SpdyStream> {
    if (this.dead || this.goingAway || this.peerWentAway) return Promise.reject(this.closedError());
    const id = this.nextStreamId;
    if (id > MAX_STREAM_ID) return Promise.reject(new SpdyError('ERR_SPDY_SESSION_CLOSED', 'SPDY stream ids are used up'));
    let block: Buffer;
    try {
      block = encodeHeaderBlock(headers);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.nextStreamId += 2;
    const stream = this.newStream(id, Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])));
    const opened = new Promise<SpdyStream>((resolve, reject) => {
      stream.state.open = { resolve, reject };
    });
    this.sendHeaderFrame(block, (compressed) => encodeSynStream(id, opts.fin ? FLAG_FIN : 0, compressed));
    if (opts.fin) {
      stream.state.localFinished = true;
      stream.end();
    }
    return opened;
  }

  /** Sends a PING; resolves when the peer echoes it. */
  ping(): Promise<void> {
    if (this.dead) return Promise.reject(this.closedError());
    const id = this.nextPingId;
    this.nextPingId = this.nextPingId + 2 > 0x7fffffff ? this.nextPingId + 2 - 0x7ffffffe : this.nextPingId + 2;
    return new Promise<void>((resolve, reject) => {
      this.pings.set(id, { resolve, reject });
      this.writeFrame(encodePing(id));
    });
  }

  /**
   * GOAWAY, then ends the socket once the frames queued before it are written. The peer closes
   * its side on the GOAWAY (spdystream does at once); one that has not within closeGraceMs of
   * our end is cut off, so a client cannot hold a closed session open.
   */
  close(): void {
    if (this.dead || this.goingAway) return;
    this.goingAway = true;
    this.writeFrame(encodeGoAway(this.lastPeerStreamId, GoAwayStatus.OK));
    this.endSocketWhenFlushed();
    const timer = setTimeout(() => this.socket.destroy(), this.closeGraceMs);
    this.socket.once('close', () => clearTimeout(timer));
  }

  /** Abrupt: the socket is destroyed, every stream with it (without an error). */
  destroy(): void {
    this.terminate(null);
    this.socket.destroy();
  }

  // ---- streams

  private newStream(id: number, headers: SpdyHeaders): SpdyStream {
    const stream = new SpdyStream(this, id, headers, this.initialWindow, this.peerInitialWindow);
    this.streams.set(id, stream);
    return stream;
  }

  /** Forgets a stream once both halves are closed. */
  private maybeForget(stream: SpdyStream): void {
    if (stream.state.localFinished && stream.state.remoteFinished) this.forget(stream);
  }

  private forget(stream: SpdyStream): void {
    if (this.streams.get(stream.id) === stream) {
      this.streams.delete(stream.id);
      if (this.isPeerStreamId(stream.id)) {
        this.peerStreamCount--;
        this.peerHeaderBytes -= stream.state.headerBytes;
      }
    }
    if (this.stalled.delete(stream)) this.pump();
    if (this.peerWentAway && this.streams.size === 0) this.endSocketWhenFlushed();
  }

  /** @internal */
  _onStreamRead(stream: SpdyStream): void {
    if (this.stalled.delete(stream)) this.pump();
  }

  /** @internal */
  _onStreamDestroyed(stream: SpdyStream): void {
    const s = stream.state;
    if (s.open) {
      s.open.reject(this.dead ? this.closedError() : new SpdyError('ERR_SPDY_STREAM_RESET', `SPDY stream ${stream.id} destroyed before its reply`));
      s.open = null;
    }
    if (!this.dead && !s.reset && !(s.localFinished && s.remoteFinished) && this.streams.get(stream.id) === stream) {
      s.reset = true;
      this.writeFrame(encodeRstStream(stream.id, RstStatus.CANCEL));
    }
    this.forget(stream);
  }

  /** @internal */
  _resetStream(stream: SpdyStream, status: number): void {
    const s = stream.state;
    if (!this.dead && !s.reset && this.streams.get(stream.id) === stream) {
      s.reset = true;
      this.writeFrame(encodeRstStream(stream.id, status));
    }
    stream.destroy();
  }

  /** @internal: frames `chunk` as DATA, waiting for socket room and, if the peer uses them, windows. */
  _sendData(stream: SpdyStream, chunk: Buffer, fin: boolean, callback: (error?: Error | null) => void): void {
    if (chunk.length === 0 && !fin) return callback();
    let offset = 0;
    const step = (): void => {
      if (this.dead) return callback(this.closedError());
      if (stream.state.reset || stream.destroyed) return callback(new SpdyError('ERR_SPDY_STREAM_RESET', `SPDY stream ${stream.id} is reset`));
      if (stream.state.localFinished) return callback(new SpdyError('ERR_SPDY_PROTOCOL', `SPDY stream ${stream.id} is closed for sending`));
      for (;;) {
        if (!this.canWrite()) {
          this.writableWaiters.push(step);
          return;
        }
        const left = chunk.length - offset;
        let n = Math.min(left, this.maxDataFrameLength);
        if (this.peerFlowControl && n > 0) {
          const room = Math.min(stream.state.sendWindow, this.sessionSendWindow);
          if (room <= 0) {
            this.windowWaiters.push(step);
            return;
          }
          n = Math.min(n, room);
        }
        stream.state.sendWindow -= n;
        this.sessionSendWindow -= n;
        const last = offset + n === chunk.length;
        // Head and payload go out as two buffers of one writev: a DATA frame never copies its payload.
        this.writeFrame([encodeDataHead(stream.id, fin && last ? FLAG_FIN : 0, n), chunk.subarray(offset, offset + n)]);
        offset += n;
        if (last) {
          if (fin) {
            stream.state.localFinished = true;
            this.maybeForget(stream);
          }
          return callback();
        }
      }
    };
    step();
  }

  // ---- outbound

  /**
   * Room to write: nothing queued behind a header block, and the socket under our mark or not
   * asking for a drain (a socket whose own high-water mark is above ours never emits 'drain'
   * for us to wait on).
   */
  private canWrite(): boolean {
    return !this.dead && this.outPending.length === 0 && (this.socket.writableLength < this.outboundHighWaterMark || !this.socket.writableNeedDrain);
  }

  private writeFrame(bytes: Buffer | Buffer[]): void {
    if (this.dead || this.socket.destroyed || this.socket.writableEnded) return;
    if (this.outPending.length > 0) this.outPending.push({ bytes });
    else this.writeOut(bytes);
  }

  private writeOut(bytes: Buffer | Buffer[]): void {
    if (!Array.isArray(bytes)) {
      this.socket.write(bytes);
      return;
    }
    this.socket.cork();
    for (const b of bytes) this.socket.write(b);
    this.socket.uncork();
  }

  /** Queues a frame carrying a header block: it and every frame after it wait for the block's compression. */
  private sendHeaderFrame(block: Buffer, build: (compressed: Buffer) => Buffer): void {
    const slot: OutboundSlot = { bytes: null };
    this.outPending.push(slot);
    this.compressor.compress(block).then(
      (compressed) => {
        slot.bytes = build(compressed);
        this.flushPending();
      },
      (err: Error) => this.terminate(new SpdyError('ERR_SPDY_PROTOCOL', `SPDY header compression failed: ${err.message}`)),
    );
  }

  private flushPending(): void {
    while (this.outPending.length > 0 && this.outPending[0].bytes) {
      const { bytes } = this.outPending.shift()!;
      if (!this.dead && !this.socket.destroyed && !this.socket.writableEnded) this.writeOut(bytes!);
    }
    if (this.outPending.length === 0) {
      if (this.endWhenFlushed) this.socket.end();
      this.kickWriters();
    }
  }

  private endWhenFlushed = false;
  private endSocketWhenFlushed(): void {
    if (this.outPending.length === 0) this.socket.end();
    else this.endWhenFlushed = true;
  }

  private kickWriters(): void {
    while (this.writableWaiters.length > 0 && (this.canWrite() || this.dead)) this.writableWaiters.shift()!();
  }

  private kickWindowWaiters(): void {
    const waiters = this.windowWaiters;
    this.windowWaiters = [];
    for (const w of waiters) w();
  }

  // ---- inbound

  private blocked(): boolean {
    return this.inflating || this.yielding || this.stalled.size > 0 || this.socket.writableLength > this.outboundBacklogLimit;
  }

  private onSocketData(chunk: Buffer): void {
    if (this.dead) return;
    this.inbound.push(chunk);
    this.pump();
  }

  /** Parses and handles what has arrived, until it runs out or something blocks (a header block inflating, a full stream). */
  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.parseFrames();
      } while (this.pumpAgain && !this.dead);
    } finally {
      this.pumping = false;
    }
    if (this.dead) return;
    if (this.peerEnded) {
      if (this.endDeferred()) return;
      this.endByPeer();
      if (this.socketClosed) this.onSocketClose();
      return;
    }
    if (this.blocked()) this.socket.pause();
    else this.socket.resume();
  }

  private parseFrames(): void {
    const q = this.inbound;
    while (!this.dead && !this.blocked()) {
      if (this.dataLeft > 0) {
        if (q.length === 0) return;
        const piece = q.takeSome(this.dataLeft);
        this.dataLeft -= piece.length;
        this.deliver(this.dataStream, piece);
        if (this.dataLeft === 0) this.endDataFrame();
        continue;
      }
      if (this.skipLeft > 0) {
        const n = Math.min(this.skipLeft, q.length);
        if (n === 0) return;
        q.skip(n);
        this.skipLeft -= n;
        continue;
      }
      if (q.length < FRAME_HEAD_LENGTH) return;
      const head = decodeFrameHead(q.peek(FRAME_HEAD_LENGTH));
      if (!head.control) {
        q.skip(FRAME_HEAD_LENGTH);
        this.startDataFrame(head.streamId, head.flags, head.length);
        continue;
      }
      if (head.version !== SPDY_VERSION) return this.protocolError(`SPDY version ${head.version} is not 3`);
      if (!KNOWN_CONTROL_TYPES.has(head.type)) {
        // Unknown control frames are ignored (draft 3.1, 2.2.1), skipped without buffering them.
        q.skip(FRAME_HEAD_LENGTH);
        this.skipLeft = head.length;
        continue;
      }
      if (head.length > this.maxControlFrameLength) return this.protocolError(`SPDY control frame of ${head.length} bytes is over ${this.maxControlFrameLength}`);
      if (q.length < FRAME_HEAD_LENGTH + head.length) return;
      q.skip(FRAME_HEAD_LENGTH);
      const payload = head.length > 0 ? q.take(head.length) : Buffer.alloc(0);
      this.onControlFrame(head.type, head.flags, payload);
    }
  }

  private startDataFrame(streamId: number, flags: number, length: number): void {
    if (streamId === 0) return this.protocolError('SPDY DATA frame on stream 0');
    this.dataStream = this.streams.get(streamId);
    this.dataFlags = flags;
    this.dataLeft = length;
    if (length === 0) this.endDataFrame();
  }

  private endDataFrame(): void {
    const stream = this.dataStream;
    this.dataStream = undefined;
    if (stream && this.dataFlags & FLAG_FIN) this.remoteFinish(stream);
  }

  private deliver(stream: SpdyStream | undefined, piece: Buffer): void {
    this.acknowledgeSession(piece.length);
    // Data for a stream that is gone, reset or finished is dropped, as spdystream drops it.
    if (!stream || stream.destroyed || stream.state.remoteFinished || this.streams.get(stream.id) !== stream) return;
    stream.state.received += piece.length;
    if (!stream.push(piece)) this.stalled.add(stream);
    this.acknowledgeStream(stream);
  }

  /**
   * A stream's window is acknowledged as its data reaches the stream's buffer, as the session's
   * is: what bounds that buffer is the socket no longer being read while it is full (`stalled`),
   * which holds for every peer, spdystream included. Acknowledging only as the reader consumes
   * would need a call for every consumption, and Readable calls `_read` once per push, before
   * the bytes it returns leave the buffer: a peer that honours windows then waits for a
   * WINDOW_UPDATE that never comes (an upload stalled near 4 MiB into a paused reader).
   */
  private acknowledgeStream(stream: SpdyStream): void {
    const s = stream.state;
    if (!this.sendWindowUpdates || this.dead || s.remoteFinished || s.reset) return;
    const delta = s.received - s.acknowledged;
    if (delta >= this.initialWindow / 2) {
      s.acknowledged += delta;
      this.writeFrame(encodeWindowUpdate(stream.id, delta));
    }
  }

  /** SPDY/3.1's session window: acknowledged as data reaches a stream's buffer, as each stream's own (see acknowledgeStream). */
  private acknowledgeSession(n: number): void {
    if (!this.sendWindowUpdates) return;
    this.sessionUnacknowledged += n;
    if (this.sessionUnacknowledged >= DEFAULT_WINDOW / 2) {
      this.writeFrame(encodeWindowUpdate(0, this.sessionUnacknowledged));
      this.sessionUnacknowledged = 0;
    }
  }

  private remoteFinish(stream: SpdyStream): void {
    if (stream.state.remoteFinished) return;
    stream.state.remoteFinished = true;
    if (!stream.destroyed) stream.push(null);
    this.maybeForget(stream);
  }

  private onControlFrame(type: number, flags: number, p: Buffer): void {
    switch (type) {
      case FrameType.SYN_STREAM:
        if (p.length < 10) return this.protocolError('SPDY SYN_STREAM is shorter than 10 bytes');
        return this.inflateThen(p.subarray(10), (headers) => this.onSynStream(p.readUInt32BE(0) & MAX_STREAM_ID, flags, headers));
      case FrameType.SYN_REPLY:
        if (p.length < 4) return this.protocolError('SPDY SYN_REPLY is shorter than 4 bytes');
        return this.inflateThen(p.subarray(4), (headers) => this.onSynReply(p.readUInt32BE(0) & MAX_STREAM_ID, flags, headers));
      case FrameType.HEADERS:
        if (p.length < 4) return this.protocolError('SPDY HEADERS is shorter than 4 bytes');
        return this.inflateThen(p.subarray(4), (headers) => this.onHeaders(p.readUInt32BE(0) & MAX_STREAM_ID, flags, headers));
      case FrameType.RST_STREAM:
        if (p.length !== 8) return this.protocolError('SPDY RST_STREAM is not 8 bytes');
        return this.onRstStream(p.readUInt32BE(0) & MAX_STREAM_ID, p.readUInt32BE(4));
      case FrameType.SETTINGS: {
        if (p.length < 4 || p.length !== 4 + 8 * p.readUInt32BE(0)) return this.protocolError('SPDY SETTINGS length does not match its count');
        for (let off = 4; off < p.length; off += 8) {
          if (p.readUIntBE(off + 1, 3) === SETTINGS_INITIAL_WINDOW_SIZE) this.onPeerInitialWindow(p.readUInt32BE(off + 4));
        }
        return;
      }
      case FrameType.PING:
        if (p.length !== 4) return this.protocolError('SPDY PING is not 4 bytes');
        return this.onPing(p.readUInt32BE(0));
      case FrameType.GOAWAY:
        if (p.length !== 8) return this.protocolError('SPDY GOAWAY is not 8 bytes');
        return this.onGoAway(p.readUInt32BE(0) & MAX_STREAM_ID, p.readUInt32BE(4));
      case FrameType.WINDOW_UPDATE:
        if (p.length !== 8) return this.protocolError('SPDY WINDOW_UPDATE is not 8 bytes');
        return this.onWindowUpdate(p.readUInt32BE(0) & MAX_STREAM_ID, p.readUInt32BE(4) & 0x7fffffff);
    }
  }

  /** Inflates a header block (every one, even of a frame we will refuse: the context is shared) and stops parsing until it is done. */
  private inflateThen(block: Buffer, handle: (headers: SpdyHeaders) => void): void {
    this.inflating = true;
    const decoded = block.length === 0 ? Promise.resolve(null) : this.decompressor.decompress(block);
    decoded.then(
      (raw) => {
        if (this.dead) return;
        let headers: SpdyHeaders;
        try {
          headers = raw ? decodeHeaderBlock(raw) : (Object.create(null) as SpdyHeaders);
        } catch (err) {
          return this.protocolError(err instanceof HeaderBlockError ? err.message : String(err));
        }
        this.inflating = false;
        handle(headers);
        this.pump();
      },
      (err: Error) => {
        if (!this.dead) this.protocolError(err.message);
      },
    );
  }

  /** The client opens odd stream ids, the server even ones. */
  private isPeerStreamId(id: number): boolean {
    return id % 2 === (this.role === 'server' ? 1 : 0);
  }

  private onSynStream(id: number, flags: number, headers: SpdyHeaders): void {
    if (id === 0 || !this.isPeerStreamId(id) || id <= this.lastPeerStreamId) {
      this.writeFrame(encodeRstStream(id, RstStatus.PROTOCOL_ERROR));
      return;
    }
    let headerBytes = 0;
    for (const [name, value] of Object.entries(headers)) headerBytes += Buffer.byteLength(name) + Buffer.byteLength(value);
    if (
      this.goingAway ||
      this.peerWentAway ||
      this.listenerCount('stream') === 0 ||
      this.peerStreamCount >= this.maxConcurrentStreams ||
      this.peerHeaderBytes + headerBytes > this.maxPeerHeaderBytes
    ) {
      this.writeFrame(encodeRstStream(id, RstStatus.REFUSED_STREAM));
      return;
    }
    this.lastPeerStreamId = id;
    const stream = this.newStream(id, headers);
    this.peerStreamCount++;
    stream.state.headerBytes = headerBytes;
    this.peerHeaderBytes += headerBytes;
    // The reply is queued before anything the stream's handler writes.
    stream.state.replied = true;
    this.sendHeaderFrame(encodeHeaderBlock({}), (compressed) => encodeSynReply(id, 0, compressed));
    if (flags & FLAG_UNIDIRECTIONAL) {
      stream.state.localFinished = true;
      stream.end();
    }
    if (flags & FLAG_FIN) this.remoteFinish(stream);
    stream.state.handedOut = true;
    this.emit('stream', stream);
  }

  private onSynReply(id: number, flags: number, headers: SpdyHeaders): void {
    const stream = this.streams.get(id);
    // A reply for a stream that is gone, or a second one, is ignored, as spdystream ignores it.
    if (!stream || stream.state.replied) return;
    stream.state.replied = true;
    stream.replyHeaders = headers;
    if (flags & FLAG_FIN) this.remoteFinish(stream);
    const open = stream.state.open;
    stream.state.open = null;
    stream.state.handedOut = true;
    open?.resolve(stream);
    if (open) {
      // The caller gets a turn (its await continues in a microtask) to attach listeners before
      // the session handles the next frame, which may be this stream's RST_STREAM or data.
      this.yielding = true;
      setImmediate(() => {
        this.yielding = false;
        this.pump();
      });
    }
  }

  private onHeaders(id: number, flags: number, headers: SpdyHeaders): void {
    const stream = this.streams.get(id);
    if (!stream) return;
    stream.emit('headers', headers);
    if (flags & FLAG_FIN) this.remoteFinish(stream);
  }

  private onRstStream(id: number, status: number): void {
    const stream = this.streams.get(id);
    if (!stream) return;
    stream.state.reset = true;
    this.forget(stream);
    const err = new SpdyError('ERR_SPDY_STREAM_RESET', `SPDY stream ${id} reset by the peer (status ${status})`, status);
    const open = stream.state.open;
    if (open) {
      stream.state.open = null;
      open.reject(err);
    }
    // Not handed out yet (the open was rejected instead), or our half already closed: nobody needs an error event.
    destroyWith(stream, stream.state.localFinished ? null : err);
  }

  private onPing(id: number): void {
    if (id % 2 === this.nextPingId % 2) {
      const pending = this.pings.get(id);
      this.pings.delete(id);
      pending?.resolve();
    } else {
      this.writeFrame(encodePing(id));
    }
  }

  private onGoAway(lastGoodStreamId: number, status: number): void {
    if (this.peerWentAway) return;
    this.peerWentAway = true;
    // Streams we opened that the peer never saw will not be served.
    for (const stream of [...this.streams.values()]) {
      if (stream.id % 2 === this.nextStreamId % 2 && stream.id > lastGoodStreamId) {
        stream.state.reset = true;
        this.forget(stream);
        const err = new SpdyError('ERR_SPDY_GOAWAY', `SPDY peer went away before stream ${stream.id} (status ${status})`, status);
        if (stream.state.open) {
          stream.state.open.reject(err);
          stream.state.open = null;
        }
        destroyWith(stream, err);
      }
    }
    if (this.streams.size === 0) this.endSocketWhenFlushed();
  }

  private onPeerInitialWindow(value: number): void {
    this.peerFlowControl = true;
    const delta = value - this.peerInitialWindow;
    this.peerInitialWindow = value;
    for (const stream of this.streams.values()) stream.state.sendWindow += delta;
    this.kickWindowWaiters();
  }

  private onWindowUpdate(id: number, delta: number): void {
    this.peerFlowControl = true;
    if (id === 0) this.sessionSendWindow += delta;
    else {
      const stream = this.streams.get(id);
      if (stream) stream.state.sendWindow += delta;
    }
    this.kickWindowWaiters();
  }

  // ---- the end

  private closedError(): SpdyError {
    return new SpdyError('ERR_SPDY_SESSION_CLOSED', 'SPDY session is closed');
  }

  private onSocketEnd(): void {
    this.peerEnded = true;
    // Frames that came before the end and wait only for a turn (after a SYN_REPLY) or for zlib
    // are handled first: pump() ends the session once they are (a peer may send its last frames
    // and close at once, as kubelet does after the status).
    if (this.endDeferred()) return;
    this.endByPeer();
  }

  /** Blocked only by its own turn or zlib: what is queued will be parsed without the peer or a reader. */
  private waitsForItself(): boolean {
    return (this.yielding || this.inflating) && this.stalled.size === 0 && this.socket.writableLength <= this.outboundBacklogLimit;
  }

  /** The peer's end waits for frames that came before it (see onSocketEnd). */
  private endDeferred(): boolean {
    return this.peerEnded && !this.dead && this.inbound.length > 0 && this.waitsForItself();
  }

  private onSocketClose(): void {
    this.terminate(this.goingAway ? null : new SpdyError('ERR_SPDY_CONNECTION_LOST', 'SPDY connection closed'));
    if (!this.closeEmitted) {
      this.closeEmitted = true;
      this.emit('close');
    }
  }

  private endByPeer(): void {
    // After our own GOAWAY the peer closing is the expected end, not a loss.
    this.terminate(this.goingAway ? null : new SpdyError('ERR_SPDY_CONNECTION_LOST', 'SPDY peer closed the connection'));
    if (!this.socket.writableEnded) this.socket.end();
    // A peer that half-closed and reads nothing more would keep our end from finishing (and
    // the socket open) for ever: it gets closeGraceMs to take what is queued.
    const timer = setTimeout(() => this.socket.destroy(), this.closeGraceMs);
    this.socket.once('close', () => clearTimeout(timer));
  }

  private protocolError(message: string): void {
    if (this.dead) return;
    const err = new SpdyError('ERR_SPDY_PROTOCOL', message);
    // The GOAWAY goes straight out (frames waiting for compression are abandoned), then the connection is dropped.
    if (!this.socket.destroyed && !this.socket.writableEnded) this.socket.write(encodeGoAway(this.lastPeerStreamId, GoAwayStatus.PROTOCOL_ERROR));
    this.terminate(err);
    if (this.listenerCount('error') > 0) this.emit('error', err);
    this.socket.end(() => this.socket.destroy());
  }

  /**
   * Ends the session: every stream still open is destroyed (with `err`, when the peer or the
   * wire caused it; a stream not yet handed out only rejects its open), pings are rejected,
   * nothing more is read or written.
   */
  private terminate(err: SpdyError | null): void {
    if (this.dead) return;
    this.dead = true;
    this.inbound.clear();
    this.outPending.length = 0;
    this.stalled.clear();
    const closed = err ?? this.closedError();
    for (const p of this.pings.values()) p.reject(closed);
    this.pings.clear();
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.peerStreamCount = 0;
    this.peerHeaderBytes = 0;
    for (const stream of streams) {
      const open = stream.state.open;
      stream.state.open = null;
      open?.reject(closed);
      // A stream the peer finished holds all it will ever get: its reader gets that data
      // before the stream goes (a peer may send FIN, GOAWAY and close at once).
      if (!open && stream.state.remoteFinished && !stream.destroyed && !stream.readableEnded && stream.readableLength > 0) {
        stream.once('end', () => destroyWith(stream, err));
        continue;
      }
      destroyWith(stream, err);
    }
    this.compressor.close();
    this.decompressor.close();
    this.kickWriters();
    this.kickWindowWaiters();
    this.emit('terminated');
    // Keep reading (and dropping) so that the peer's close is seen and the socket can close.
    this.socket.resume();
  }
}

/**
 * Destroys a stream the peer or the wire ended, with `err` only where someone can hear it: a
 * stream not yet handed out (its open is rejected instead), or one without an 'error' listener,
 * closes without one, since an 'error' nobody listens to would throw and take the daemon down
 * because of what a client did. A stream's readers see it close before its end either way.
 */
function destroyWith(stream: SpdyStream, err: SpdyError | null): void {
  stream.abortError ??= err;
  stream.destroy(err && stream.state.handedOut && stream.listenerCount('error') > 0 ? err : undefined);
}

const KNOWN_CONTROL_TYPES: ReadonlySet<number> = new Set(Object.values(FrameType));
