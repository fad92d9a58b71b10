import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import * as zlib from 'node:zlib';
import { SPDY3_DICTIONARY } from './dictionary';
import {
  FLAG_FIN,
  FrameType,
  decodeFrameHead,
  encodeData,
  encodeGoAway,
  encodeHeaderBlock,
  encodePing,
  encodeRstStream,
  encodeSynReply,
  encodeSynStream,
  encodeWindowUpdate,
} from './frames';
import { RstStatus, SpdyError, SpdySession, type SpdySessionOptions, SpdyStream } from './session';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A connected pair of sockets over loopback TCP. */
async function socketPair(): Promise<{ serverSocket: net.Socket; clientSocket: net.Socket }> {
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as net.AddressInfo;
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const clientSocket = net.connect(port, '127.0.0.1');
  const [[serverSocket]] = await Promise.all([accepted, once(clientSocket, 'connect')]);
  listener.close();
  cleanups.push(() => {
    serverSocket.destroy();
    clientSocket.destroy();
  });
  return { serverSocket, clientSocket };
}

/**
 * Two connected in-memory streams with no kernel buffer in between: what one side writes waits
 * (in its writable buffer) until the other reads, so a test can see exactly what a session queues.
 */
function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = [];
  const waiting: Array<(() => void) | null> = [null, null];
  for (let i = 0; i < 2; i++) {
    const me = i;
    const other = 1 - i;
    sides.push(
      new Duplex({
        read() {
          // What is pushed into this side comes from the other side's write.
          const release = waiting[other];
          waiting[other] = null;
          release?.();
        },
        write(chunk: Buffer, _encoding, callback) {
          if (sides[other].push(chunk)) callback();
          else waiting[me] = callback;
        },
        final(callback) {
          sides[other].push(null);
          callback();
        },
        destroy(err, callback) {
          if (!sides[other].destroyed) sides[other].destroy();
          callback(err);
        },
      }),
    );
  }
  return [sides[0], sides[1]];
}

async function sessionPair(serverOpts: Partial<SpdySessionOptions> = {}, clientOpts: Partial<SpdySessionOptions> = {}) {
  const { serverSocket, clientSocket } = await socketPair();
  const server = new SpdySession(serverSocket, { role: 'server', ...serverOpts });
  const client = new SpdySession(clientSocket, { role: 'client', ...clientOpts });
  return { server, client, serverSocket, clientSocket };
}

/** Every server stream echoes what it reads, then ends. */
function echo(server: SpdySession): void {
  server.on('stream', (s: SpdyStream) => {
    s.on('error', () => {});
    s.pipe(s);
  });
}

/** Everything the stream delivers up to its end (not `for await`, which destroys the stream, and so resets it, when the reading is done). */
function readAll(s: SpdyStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
    s.resume(); // a 'data' listener alone does not restart a stream paused on purpose
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Resolves once `cond` holds, checking on each turn of the event loop (the file's timeout bounds it). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

/** Frames read off a raw socket (for the tests that play a hostile peer). */
function frameReader(socket: net.Socket) {
  let buf = Buffer.alloc(0);
  const frames: Array<{ head: ReturnType<typeof decodeFrameHead>; payload: Buffer }> = [];
  socket.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 8) {
      const head = decodeFrameHead(buf);
      if (buf.length < 8 + head.length) break;
      frames.push({ head, payload: buf.subarray(8, 8 + head.length) });
      buf = buf.subarray(8 + head.length);
    }
  });
  const closed = once(socket, 'close');
  return { frames, closed };
}

describe('SpdySession over a real socket', { timeout: 120_000 }, () => {
  it('opens a stream with headers, gets the reply, and echoes both ways with FIN', async () => {
    const { server, client } = await sessionPair();
    const seen: Record<string, string>[] = [];
    server.on('stream', (s: SpdyStream) => {
      seen.push({ ...s.headers });
      s.pipe(s);
    });
    const s = await client.openStream({ streamtype: 'stdin', StreamID: '1' });
    assert.equal(s.id, 1);
    s.end('hello');
    assert.equal((await readAll(s)).toString(), 'hello');
    assert.deepEqual(seen, [{ streamtype: 'stdin', streamid: '1' }]);
    await until(() => server.streamCount === 0 && client.streamCount === 0);
    const s2 = await client.openStream({ streamtype: 'error' });
    assert.equal(s2.id, 3, 'client ids are odd and increasing');
    s2.end();
    assert.equal((await readAll(s2)).length, 0);
    client.close();
    await Promise.all([once(server, 'close'), once(client, 'close')]);
  });

  it('opens with FIN (a stream the client never writes), and the server still writes on it', async () => {
    const { server, client } = await sessionPair();
    server.on('stream', (s: SpdyStream) => {
      s.resume();
      s.end('status');
    });
    const s = await client.openStream({ streamtype: 'error' }, { fin: true });
    assert.equal((await readAll(s)).toString(), 'status');
    await until(() => server.streamCount === 0 && client.streamCount === 0);
    client.destroy();
  });

  it('carries many streams at once, each its own bytes', async () => {
    const { server, client } = await sessionPair();
    echo(server);
    const payloads = Array.from({ length: 40 }, (_, i) => randomBytes(1000 + i * 3000));
    const results = await Promise.all(
      payloads.map(async (p, i) => {
        const s = await client.openStream({ streamtype: 'data', requestid: String(i) });
        s.end(p);
        return readAll(s);
      }),
    );
    results.forEach((r, i) => assert.ok(r.equals(payloads[i]), `stream ${i}`));
    await until(() => server.streamCount === 0);
    client.close();
    await once(server, 'close');
  });

  it('moves 10 MiB through one stream byte for byte, each way', async () => {
    const { server, client } = await sessionPair();
    const data = randomBytes(10 * 1024 * 1024);
    const atServer = new Promise<Buffer>((resolve) =>
      server.on('stream', (s: SpdyStream) => {
        void readAll(s).then(resolve);
        s.end(data);
      }),
    );
    const s = await client.openStream({ streamtype: 'data' });
    s.end(data);
    const [back, there] = await Promise.all([readAll(s), atServer]);
    assert.equal(sha(back), sha(data));
    assert.equal(sha(there), sha(data));
    client.close();
  });

  it('a paused reader stops the session reading its socket: the daemon buffers a bounded amount, and nothing is lost', async () => {
    const window = 64 * 1024;
    const { server, client, serverSocket } = await sessionPair();
    let serverStream: SpdyStream | null = null;
    server.on('stream', (s: SpdyStream) => {
      serverStream = s;
      s.pause();
    });
    // After every chunk the session has taken from the socket, what the daemon holds for the stream and unparsed.
    let maxStreamBuffer = 0;
    let maxUnparsed = 0;
    serverSocket.on('data', () => {
      maxStreamBuffer = Math.max(maxStreamBuffer, serverStream?.readableLength ?? 0);
      maxUnparsed = Math.max(maxUnparsed, server.inboundBuffered);
    });
    const data = randomBytes(32 * 1024 * 1024);
    const s = await client.openStream({ streamtype: 'stdin' });
    s.end(data);
    await until(() => serverStream !== null && server.inboundPaused);
    assert.ok(serverStream!.readableLength >= window, 'the stream filled its buffer');
    // Loopback socket buffers hold a few MiB; the daemon itself only the stream's bound plus a socket chunk.
    const got = await readAll(serverStream!);
    assert.equal(sha(got), sha(data));
    assert.ok(maxStreamBuffer <= window + 128 * 1024, `stream buffer reached ${maxStreamBuffer}`);
    assert.ok(maxUnparsed <= 256 * 1024, `unparsed bytes reached ${maxUnparsed}`);
    client.close();
  });

  it('an upload into a reader that consumes by read() (paused mode) finishes: the window is acknowledged as data arrives', async () => {
    // Our client honours the windows the server's WINDOW_UPDATEs announce; acknowledging only
    // in _read (called before the bytes it returns leave the buffer) left it waiting forever.
    const { server, client } = await sessionPair();
    const data = randomBytes(12 * 1024 * 1024);
    const atServer = new Promise<Buffer>((resolve, reject) =>
      server.on('stream', (s: SpdyStream) => {
        const chunks: Buffer[] = [];
        (async () => {
          for await (const c of s) chunks.push(c as Buffer);
          resolve(Buffer.concat(chunks));
        })().catch(reject);
        s.end();
      }),
    );
    const s = await client.openStream({ streamtype: 'stdin' });
    s.end(data);
    s.resume();
    assert.equal(sha(await atServer), sha(data));
    client.close();
  });

  it('a peer that sends FIN and goes away at once: what the stream got is still read whole', async () => {
    const { server, client } = await sessionPair();
    let serverStream: SpdyStream | null = null;
    server.on('stream', (s: SpdyStream) => {
      serverStream = s;
      s.pause();
    });
    const data = randomBytes(48 * 1024);
    const s = await client.openStream({ streamtype: 'stdin' });
    s.end(data);
    await until(() => serverStream !== null && serverStream.readableLength === data.length);
    client.destroy();
    await once(server, 'close');
    assert.equal(sha(await readAll(serverStream!)), sha(data));
  });

  it('a writer waits for the socket: a client that does not read does not make the daemon buffer without bound', async () => {
    const { server, client, serverSocket } = await sessionPair();
    const data = randomBytes(32 * 1024 * 1024);
    let maxQueued = 0;
    const write = serverSocket.write.bind(serverSocket) as (b: Buffer) => boolean;
    (serverSocket as unknown as { write: (b: Buffer) => boolean }).write = (b: Buffer) => {
      const ok = write(b);
      maxQueued = Math.max(maxQueued, serverSocket.writableLength);
      return ok;
    };
    let written = false;
    server.on('stream', (s: SpdyStream) => {
      s.resume();
      s.end(data, () => (written = true));
    });
    const s = await client.openStream({ streamtype: 'stdout' });
    s.pause();
    await until(() => client.inboundPaused && serverSocket.writableLength > 0);
    assert.equal(written, false, 'the server could not hand all its data to the socket');
    s.end();
    const got = await readAll(s);
    assert.equal(sha(got), sha(data));
    assert.ok(maxQueued <= 256 * 1024 + 64 * 1024 + 1024, `socket queue reached ${maxQueued}`);
    client.close();
  });

  it('RST_STREAM: a reset by the client destroys the server stream with the status; one by the server rejects or errors the client', async () => {
    const { server, client } = await sessionPair();
    const serverErrors: unknown[] = [];
    const serverStreams: SpdyStream[] = [];
    server.on('stream', (s: SpdyStream) => {
      serverStreams.push(s);
      s.on('error', (e) => serverErrors.push(e));
      if (s.headers.streamtype === 'refuse') s.reset(RstStatus.REFUSED_STREAM);
    });
    const a = await client.openStream({ streamtype: 'a' });
    a.reset();
    await until(() => serverErrors.length === 1);
    const err = serverErrors[0] as SpdyError;
    assert.equal(err.code, 'ERR_SPDY_STREAM_RESET');
    assert.equal(err.status, RstStatus.CANCEL);
    assert.ok(serverStreams[0].destroyed);

    // A reset by the server after its SYN_REPLY: the client's stream errors.
    const b = await client.openStream({ streamtype: 'refuse' });
    const [bErr] = (await once(b, 'error')) as [SpdyError];
    assert.equal(bErr.code, 'ERR_SPDY_STREAM_RESET');
    assert.equal(bErr.status, RstStatus.REFUSED_STREAM);

    // A reset after the server ended its half (kubectl resets what it has not finished): no error there.
    let ended: SpdyStream | null = null;
    server.removeAllListeners('stream');
    server.on('stream', (s: SpdyStream) => {
      ended = s;
      s.on('error', (e) => serverErrors.push(e));
      s.resume();
      s.end('done');
    });
    const c = await client.openStream({ streamtype: 'stdout' });
    assert.equal((await readAll(c)).toString(), 'done');
    c.reset();
    await until(() => ended !== null && ended.destroyed);
    assert.equal(serverErrors.length, 1);
    await until(() => server.streamCount === 0 && client.streamCount === 0);
    client.close();
  });

  it('GOAWAY: the server closing ends the connection, every stream goes, and no stream opens after it', async () => {
    const { server, client } = await sessionPair();
    const serverStreams: SpdyStream[] = [];
    server.on('stream', (s: SpdyStream) => serverStreams.push(s));
    const s = await client.openStream({ streamtype: 'stdout' });
    const clientErr = once(s, 'error');
    server.close();
    await assert.rejects(server.openStream({ a: 'b' }), (e: SpdyError) => e.code === 'ERR_SPDY_SESSION_CLOSED');
    await Promise.all([once(server, 'close'), once(client, 'close')]);
    const [e] = (await clientErr) as [SpdyError];
    assert.equal(e.code, 'ERR_SPDY_CONNECTION_LOST');
    assert.ok(serverStreams[0].destroyed, 'the server stream is destroyed too');
    await assert.rejects(client.openStream({ a: 'b' }), (e: SpdyError) => e.code === 'ERR_SPDY_SESSION_CLOSED');
  });

  it('GOAWAY from the client: streams open go on to their end, new ones are refused, then the socket closes', async () => {
    const { server, client } = await sessionPair();
    let serverStream: SpdyStream | null = null;
    server.on('stream', (s: SpdyStream) => (serverStream = s));
    const s = await client.openStream({ streamtype: 'stdin' });
    // Play spdystream's GOAWAY (last good stream id 0: the client accepted none of the server's) by hand, the stream still open.
    (client as unknown as { socket: net.Socket }).socket.write(Buffer.from('80030007000000080000000000000000', 'hex'));
    await until(() => (server as unknown as { peerWentAway: boolean }).peerWentAway);
    await assert.rejects(client.openStream({ streamtype: 'late' }), (e: SpdyError) => e.code === 'ERR_SPDY_STREAM_RESET' && e.status === RstStatus.REFUSED_STREAM);
    s.end('last words');
    serverStream!.end('reply');
    assert.equal((await readAll(serverStream!)).toString(), 'last words');
    assert.equal((await readAll(s)).toString(), 'reply');
    await Promise.all([once(server, 'close'), once(client, 'close')]);
  });

  it('close(): a peer that never closes its side is cut off after the grace', async () => {
    const [serverSide, peer] = duplexPair();
    const server = new SpdySession(serverSide, { role: 'server', closeGraceMs: 50 });
    const got: Buffer[] = [];
    peer.on('data', (c: Buffer) => got.push(c)); // reads, but never ends its side
    let peerSawEnd = false;
    peer.on('end', () => (peerSawEnd = true));
    server.close();
    await once(server, 'close');
    assert.ok(peerSawEnd, 'our side was ended first');
    assert.equal(Buffer.concat(got).toString('hex'), '80030007000000080000000000000000', 'GOAWAY OK, no stream accepted');
  });

  it('answers pings both ways', async () => {
    const { server, client } = await sessionPair();
    await client.ping();
    await server.ping();
    await Promise.all([client.ping(), client.ping(), server.ping()]);
    client.close();
    await once(server, 'close');
  });

  it('a dead peer mid-stream destroys every stream with an error, and the session closes', async () => {
    const { server, clientSocket } = await sessionPair();
    const client = new SpdySession(clientSocket, { role: 'client' });
    const serverStreams: SpdyStream[] = [];
    const opened = new Promise<SpdyStream>((resolve) => server.on('stream', (st: SpdyStream) => serverStreams.push(st) === 2 && resolve(st)));
    // One stream nobody listens to errors on: it must close without throwing.
    const unheard = await client.openStream({ streamtype: 'stderr' });
    unheard.on('error', () => {});
    const s = await client.openStream({ streamtype: 'stdin' });
    s.write(randomBytes(100_000));
    const serverStream = await opened;
    const errored = once(serverStream, 'error');
    serverStream.resume();
    s.on('error', () => {});
    clientSocket.destroy();
    const [e] = (await errored) as [SpdyError];
    assert.equal(e.code, 'ERR_SPDY_CONNECTION_LOST');
    await once(server, 'close');
    assert.ok(serverStreams[0].destroyed);
    assert.equal(serverStreams[0].abortError?.code, 'ERR_SPDY_CONNECTION_LOST', 'the reason is kept where no listener heard it');
    assert.equal(server.streamCount, 0);
  });
});

describe('SpdySession and the bytes moby/spdystream writes', { timeout: 30_000 }, () => {
  // Written by spdystream's own framer (spdy.Framer.WriteFrame, github.com/moby/spdystream at
  // f0be51f, go1.19), as Connection.CreateStream, Stream.Close and Connection.Ping send them:
  // kubectl's error stream, then its stdout stream (whose header block refers back into the
  // same zlib context), an empty DATA with FIN, a ping. 78f9 e3c6a7c2 opens Go's zlib stream:
  // best compression, the dictionary's Adler-32.
  const GO_SYN_STREAM_1_ERROR = '80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff';
  const GO_SYN_STREAM_3_STDOUT = '800300010000001900000003000000000000c22ac5565c92925f5a02000000ffff';
  const GO_DATA_1_FIN = '0000000101000000';
  const GO_PING_1 = '800300060000000400000001';
  // Written after the two SYN_STREAMs by the same framer, so its block continues that zlib stream: only its fixed part is compared.
  const GO_SYN_REPLY_2_EMPTY = '800300020000000e000000026260606000000000ffff';

  it("accepts spdystream's streams, FIN and ping byte for byte, and replies what it can inflate", async () => {
    const { serverSocket, clientSocket } = await socketPair();
    const server = new SpdySession(serverSocket, { role: 'server' });
    const streams: SpdyStream[] = [];
    server.on('stream', (s: SpdyStream) => streams.push(s));
    const reader = frameReader(clientSocket);
    clientSocket.write(Buffer.from(GO_SYN_STREAM_1_ERROR + GO_SYN_STREAM_3_STDOUT + GO_DATA_1_FIN + GO_PING_1, 'hex'));
    await until(() => reader.frames.some((f) => f.head.control && f.head.type === FrameType.PING));
    assert.deepEqual(
      streams.map((s) => [s.id, { ...s.headers }]),
      [
        [1, { streamtype: 'error' }],
        [3, { streamtype: 'stdout' }],
      ],
    );
    await readAll(streams[0]); // FIN came: the stream's readable side ends
    const ping = reader.frames.find((f) => f.head.control && f.head.type === FrameType.PING)!;
    assert.equal(Buffer.concat([encodePing(1).subarray(0, 8), ping.payload]).toString('hex'), GO_PING_1, 'the ping is echoed as it came');
    // The replies inflate in one context with the dictionary, as spdystream's reader does.
    const inflate = zlib.createInflate({ dictionary: SPDY3_DICTIONARY });
    const replies = reader.frames.filter((f) => f.head.control && f.head.type === FrameType.SYN_REPLY);
    assert.deepEqual(
      replies.map((r) => r.payload.readUInt32BE(0)),
      [1, 3],
    );
    for (const r of replies) {
      const out: Buffer[] = [];
      const onData = (c: Buffer) => out.push(c);
      inflate.on('data', onData);
      inflate.write(r.payload.subarray(4));
      await new Promise<void>((res) => inflate.flush(zlib.constants.Z_SYNC_FLUSH, () => res()));
      inflate.off('data', onData);
      assert.equal(Buffer.concat(out).toString('hex'), '00000000', 'an empty header block');
    }
    inflate.close();
    // Our own frames are Go's bytes where no compression is involved.
    assert.equal(encodeData(1, FLAG_FIN, Buffer.alloc(0)).toString('hex'), GO_DATA_1_FIN);
    assert.equal(encodePing(1).toString('hex'), GO_PING_1);
    assert.equal(encodeRstStream(3, RstStatus.CANCEL).toString('hex'), '80030003000000080000000300000005');
    assert.equal(encodeGoAway(0, 0).toString('hex'), '80030007000000080000000000000000');
    assert.equal(GO_SYN_REPLY_2_EMPTY.slice(0, 24), encodeSynReply(2, 0, Buffer.alloc(10)).toString('hex').slice(0, 24));
    server.destroy();
  });
});

describe('SpdySession against a hostile peer', { timeout: 60_000 }, () => {
  async function rawPeer() {
    const { serverSocket, clientSocket } = await socketPair();
    const server = new SpdySession(serverSocket, { role: 'server' });
    const errors: Error[] = [];
    server.on('error', (e) => errors.push(e));
    server.on('stream', (s: SpdyStream) => s.on('error', () => {}));
    return { server, raw: clientSocket, reader: frameReader(clientSocket), errors };
  }
  const isGoAwayProtocolError = (f: { head: ReturnType<typeof decodeFrameHead>; payload: Buffer }) =>
    f.head.control && f.head.type === FrameType.GOAWAY && f.payload.readUInt32BE(4) === 1;

  it('a control frame longer than the limit gets GOAWAY PROTOCOL_ERROR and the connection is dropped', async () => {
    const { raw, reader, errors } = await rawPeer();
    raw.write(Buffer.from('80030001' + '00ffffff', 'hex')); // a SYN_STREAM claiming 16 MiB - 1
    await reader.closed;
    assert.ok(reader.frames.some(isGoAwayProtocolError));
    assert.match(errors[0].message, /over/);
  });

  it('a header block that does not inflate is fatal', async () => {
    const { raw, reader, errors } = await rawPeer();
    raw.write(encodeSynStream(1, 0, Buffer.from('not zlib, not at all')));
    await reader.closed;
    assert.ok(reader.frames.some(isGoAwayProtocolError));
    assert.match(errors[0].message, /inflate/);
  });

  it('a header block that inflates past the bound (a zip bomb) is fatal', async () => {
    const { raw, reader, errors } = await rawPeer();
    const bomb = zlib.deflateSync(encodeHeaderBlock({ a: 'x'.repeat(8 * 1024 * 1024) }), { dictionary: SPDY3_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    raw.write(encodeSynStream(1, 0, bomb));
    await reader.closed;
    assert.ok(reader.frames.some(isGoAwayProtocolError));
    assert.match(errors[0].message, /inflates past/);
  });

  it('the server role takes header blocks of 64 KiB at most: a larger one is fatal', async () => {
    const { raw, reader, errors } = await rawPeer();
    const block = zlib.deflateSync(encodeHeaderBlock({ streamtype: 'data', junk: 'x'.repeat(100 * 1024) }), {
      dictionary: SPDY3_DICTIONARY,
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    raw.write(encodeSynStream(1, 0, block));
    await reader.closed;
    assert.ok(reader.frames.some(isGoAwayProtocolError));
    assert.match(errors[0].message, /inflates past/);
  });

  it('streams whose headers together pass maxPeerHeaderBytes are refused until one goes', async () => {
    const { server, client } = await sessionPair({ maxPeerHeaderBytes: 10_000 });
    const serverStreams: SpdyStream[] = [];
    server.on('stream', (s: SpdyStream) => serverStreams.push(s.on('error', () => {})));
    const junk = 'j'.repeat(4000);
    const open = await Promise.all([1, 2].map((i) => client.openStream({ n: String(i), junk })));
    for (const s of open) s.on('error', () => {});
    await assert.rejects(client.openStream({ n: '3', junk }), (e: SpdyError) => e.code === 'ERR_SPDY_STREAM_RESET' && e.status === RstStatus.REFUSED_STREAM);
    const small = await client.openStream({ n: '4' }); // small headers still fit
    small.destroy();
    open[0].destroy();
    await until(() => server.streamCount === 1);
    const again = await client.openStream({ n: '5', junk });
    assert.equal(serverStreams.at(-1)!.headers.n, '5');
    again.destroy();
    client.close();
  });

  it('a wrong version and a malformed fixed-size frame are fatal', async () => {
    const a = await rawPeer();
    a.raw.write(Buffer.from('80020006000000040000000f', 'hex')); // a SPDY/2 PING
    await a.reader.closed;
    assert.ok(a.reader.frames.some(isGoAwayProtocolError));
    const b = await rawPeer();
    b.raw.write(Buffer.from('8003000600000003000000', 'hex')); // a PING of 3 bytes
    await b.reader.closed;
    assert.ok(b.reader.frames.some(isGoAwayProtocolError));
  });

  it('a peer that floods pings and reads nothing: the answers queue up to a bound, then the session stops reading', async () => {
    const [serverSide, peer] = duplexPair();
    const server = new SpdySession(serverSide, { role: 'server' });
    const limit = 4 * 256 * 1024;
    let maxQueued = 0;
    const write = serverSide.write.bind(serverSide) as (b: Buffer) => boolean;
    (serverSide as unknown as { write: (b: Buffer) => boolean }).write = (b: Buffer) => {
      const ok = write(b);
      maxQueued = Math.max(maxQueued, serverSide.writableLength);
      return ok;
    };
    peer.pause();
    const count = 200_000;
    for (let i = 0; i < count; i++) peer.write(encodePing(2 * i + 1));
    await until(() => server.inboundPaused);
    assert.ok(maxQueued <= limit + 12, `the answers queued ${maxQueued} bytes`);
    let echoed = 0;
    peer.on('data', (c: Buffer) => (echoed += c.length));
    peer.resume();
    await until(() => echoed === count * 12);
    assert.ok(maxQueued <= limit + 12, `the answers queued ${maxQueued} bytes`);
    server.destroy();
  });

  it('streams past maxConcurrentStreams are refused until one goes', async () => {
    const { server, client } = await sessionPair({ maxConcurrentStreams: 3 });
    const serverStreams: SpdyStream[] = [];
    server.on('stream', (s: SpdyStream) => serverStreams.push(s.on('error', () => {})));
    const open = await Promise.all([1, 2, 3].map((i) => client.openStream({ n: String(i) })));
    for (const s of open) s.on('error', () => {});
    await assert.rejects(client.openStream({ n: '4' }), (e: SpdyError) => e.code === 'ERR_SPDY_STREAM_RESET' && e.status === RstStatus.REFUSED_STREAM);
    open[0].end();
    serverStreams[0].resume();
    serverStreams[0].end();
    await readAll(open[0]);
    await until(() => server.streamCount === 2);
    const fifth = await client.openStream({ n: '5' });
    assert.equal(serverStreams.at(-1)!.headers.n, '5');
    fifth.destroy();
    client.close();
  });

  it('unknown control frames are skipped, and a stream id that does not increase gets RST_STREAM PROTOCOL_ERROR; the session lives on', async () => {
    const { server, raw, reader } = await rawPeer();
    const streams: SpdyStream[] = [];
    server.on('stream', (s: SpdyStream) => streams.push(s));
    const deflate = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY });
    const compress = async (h: Record<string, string>) => {
      const out: Buffer[] = [];
      const onData = (c: Buffer) => out.push(c);
      deflate.on('data', onData);
      deflate.write(encodeHeaderBlock(h));
      await new Promise<void>((r) => deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => r()));
      deflate.off('data', onData);
      return Buffer.concat(out);
    };
    // A CREDENTIAL frame (type 10) with a payload, fragmented byte by byte with everything after it.
    const bytes = Buffer.concat([
      Buffer.from('8003000a00000005' + '0102030405', 'hex'),
      encodeSynStream(3, 0, await compress({ streamtype: 'one' })),
      encodeSynStream(1, 0, await compress({ streamtype: 'two' })), // id 1 after 3
      encodeData(3, FLAG_FIN, Buffer.from('payload')),
      encodePing(7),
      encodeWindowUpdate(3, 1000),
    ]);
    for (const byte of bytes) raw.write(Buffer.from([byte]));
    await until(() => reader.frames.some((f) => f.head.control && f.head.type === FrameType.PING));
    assert.equal(streams.length, 1);
    assert.equal(streams[0].id, 3);
    assert.equal((await readAll(streams[0])).toString(), 'payload');
    const rst = reader.frames.find((f) => f.head.control && f.head.type === FrameType.RST_STREAM);
    assert.ok(rst);
    assert.equal(rst.payload.readUInt32BE(0), 1);
    assert.equal(rst.payload.readUInt32BE(4), RstStatus.PROTOCOL_ERROR);
    assert.ok(reader.frames.some((f) => f.head.control && f.head.type === FrameType.SYN_REPLY));
    deflate.close();
    raw.destroy();
    await once(server, 'close');
  });
});
