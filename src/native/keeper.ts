/** The keeper binary and the one syscall the daemon's side of its socket needs. */
import path from 'node:path';
import { buildDir, nativeFunction } from './binding';

/** nodecri-keeper (native/keeper/keeper.cc), built beside the addon. */
export const keeperBinary = path.join(buildDir, 'nodecri-keeper');

const nSend = nativeFunction<(sock: number, frame: Buffer, fd: number) => void>('keeperSend');

/**
 * Sends one frame on the keeper socket, with `fd` attached (SCM_RIGHTS) when given. Never
 * blocks: the frame goes whole or the call throws (EAGAIN when the keeper reads nothing).
 */
export function sendToKeeper(sock: number, frame: Buffer, fd: number | null): void {
  nSend(sock, frame, fd ?? -1);
}
