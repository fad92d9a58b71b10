/** The keeper binary and the one syscall the daemon's side of its socket needs. */
import path from 'node:path';
import { buildDir, nativeFunction } from './binding';

/** nodecri-keeper (native/keeper/keeper.cc), built beside the addon (which this loads). */
export function keeperBinary(): string {
  return path.join(buildDir(), 'nodecri-keeper');
}

const nSend = nativeFunction<(sock: number, frame: Buffer, fd: number) => void>('keeperSend');

/**
 * Sends one frame on the keeper socket, with `fd` attached (SCM_RIGHTS) when given. Never
 * blocks: the frame goes whole or the call throws (EAGAIN when the keeper reads nothing).
 */
export function sendToKeeper(sock: number, frame: Buffer, fd: number | null): void {
  nSend(sock, frame, fd ?? -1);
}

const nWatch = nativeFunction<(sock: number, onFrame: (frame: Buffer | null) => void, onWritable: () => void) => number>('keeperWatch');
const nWatchWritable = nativeFunction<(id: number, on: boolean) => void>('keeperWatchWritable');
const nUnwatch = nativeFunction<(id: number) => void>('keeperUnwatch');

/**
 * Reads the keeper socket (SOCK_SEQPACKET) on the loop without owning it: `onFrame` gets
 * each message, then null once at EOF or an error (the watch is gone then). Does not keep
 * the process alive. `onWritable` is called while `wantWritable(true)` is in force and the
 * socket takes more.
 */
export function watchKeeper(sock: number, onFrame: (frame: Buffer | null) => void, onWritable: () => void): { wantWritable(on: boolean): void; close(): void } {
  const id = nWatch(sock, onFrame, onWritable);
  return { wantWritable: (on) => nWatchWritable(id, on), close: () => nUnwatch(id) };
}
