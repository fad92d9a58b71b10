/**
 * ChannelConnection against a fake WebSocket that delivers messages only while not paused, as
 * `ws` does with a paused socket: what the server holds unread stays bounded however the
 * client mixes its channels.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { ChannelConnection } from './websocket';

class FakeWebSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  paused = false;
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  send(_data: unknown, _opts: unknown, cb: (err?: Error) => void): void {
    cb();
  }
  close(): void {
    this.readyState = 3;
  }
  terminate(): void {
    this.readyState = 3;
  }
}

const turn = () => new Promise<void>((r) => setImmediate(r));

/**
 * Delivers the frames two at a time, each pair only once the socket is not paused (a turn of
 * the loop between pairs lets the readers run): as `ws` parses the whole chunk the socket gave
 * it, a pause stops the next chunk, not the frames of this one. Stops when the socket stays
 * paused for a few turns.
 */
async function deliver(ws: FakeWebSocket, frames: Buffer[]): Promise<void> {
  let n = 0;
  for (let idle = 0; n < frames.length && idle < 10;) {
    await turn();
    if (ws.paused) {
      idle++;
      continue;
    }
    idle = 0;
    for (const f of frames.slice(n, n + 2)) ws.emit('message', f);
    n += 2;
  }
}

const frameOf = (channel: number, data: Buffer | string) => Buffer.concat([Buffer.of(channel), Buffer.from(data)]);

describe('ChannelConnection', { timeout: 30_000 }, () => {
  it('a reader over its high-water mark keeps the socket paused while another reader is read', async () => {
    const ws = new FakeWebSocket();
    const conn = new ChannelConnection(ws as unknown as WebSocket, 'v5.channel.k8s.io');
    const stdin = conn.reader(0); // nobody reads it: a process that reads no stdin
    const resize = conn.reader(4);
    resize.on('data', () => {}); // read as it comes, as remote-command.ts reads sizes
    const chunk = Buffer.alloc(60 * 1024, 'x');
    const frames: Buffer[] = [];
    for (let i = 0; i < 200; i++) frames.push(frameOf(0, chunk), frameOf(4, '{"Width":80,"Height":24}'));
    await deliver(ws, frames);
    assert.ok(stdin.readableLength <= 2 * chunk.length, `stdin holds ${stdin.readableLength} bytes unread`);
    assert.equal(ws.paused, true);
    // reading it lets the socket go on
    stdin.read();
    await turn();
    assert.equal(ws.paused, false);
  });

  it('port-forward: one slow port holds the socket, a fast one does not release it', async () => {
    const ws = new FakeWebSocket();
    const conn = new ChannelConnection(ws as unknown as WebSocket, 'v4.channel.k8s.io');
    const slow = conn.reader(0);
    const fast = conn.reader(2);
    fast.on('data', () => {});
    const chunk = Buffer.alloc(60 * 1024, 'y');
    const frames: Buffer[] = [];
    for (let i = 0; i < 200; i++) frames.push(frameOf(0, chunk), frameOf(2, chunk));
    await deliver(ws, frames);
    assert.ok(slow.readableLength <= 2 * chunk.length, `the slow port holds ${slow.readableLength} bytes unread`);
    assert.equal(ws.paused, true);
  });

  it('a reader destroyed while full no longer holds the socket', async () => {
    const ws = new FakeWebSocket();
    const conn = new ChannelConnection(ws as unknown as WebSocket, 'v4.channel.k8s.io');
    const r = conn.reader(0);
    ws.emit('message', frameOf(0, Buffer.alloc(60 * 1024)));
    assert.equal(ws.paused, true);
    r.destroy();
    await turn();
    assert.equal(ws.paused, false);
  });

  it('v5: data after a channel is closed is dropped, the channel ends normally', async () => {
    const ws = new FakeWebSocket();
    const conn = new ChannelConnection(ws as unknown as WebSocket, 'v5.channel.k8s.io');
    const stdin = conn.reader(0);
    let errored: Error | null = null;
    stdin.on('error', (e) => (errored = e));
    ws.emit('message', frameOf(0, 'before'));
    ws.emit('message', Buffer.of(255, 0));
    ws.emit('message', frameOf(0, 'after'));
    const got: Buffer[] = [];
    for await (const b of stdin) got.push(b as Buffer);
    assert.equal(Buffer.concat(got).toString(), 'before');
    assert.equal(errored, null);
  });
});
