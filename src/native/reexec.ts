/** The daemon's in-place re-exec: same pid, so its children stay its children. */
import { nativeFunction } from './binding';

/** execve(path, argv, env); returns only by throwing a SyscallError. */
export const daemonReexec = nativeFunction<(path: string, argv: string[], env: string[]) => never>('daemonReexec');
