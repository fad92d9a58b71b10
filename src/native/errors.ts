/**
 * Errors that cross the N-API boundary. The addon throws plain Errors carrying `code`,
 * `errno`, `syscall`, `path` and `step` (like Node's fs errors); wrapNative() turns each
 * into a SyscallError so that callers can test `instanceof` and read typed fields.
 */
export class SyscallError extends Error {
  override readonly name = 'SyscallError';
  constructor(
    message: string,
    /** errno name, e.g. "ENOENT" */
    readonly code: string,
    readonly errno: number,
    readonly syscall: string,
    readonly path: string | null,
    /** what the addon was doing, e.g. "pin net namespace" */
    readonly step: string | null,
  ) {
    super(message);
  }
}

interface NativeErrorShape {
  message: string;
  code: string;
  errno: number;
  syscall: string;
  path?: string;
  step?: string;
}

function isNativeError(e: unknown): e is NativeErrorShape {
  return e instanceof Error && typeof (e as Partial<NativeErrorShape>).code === 'string' && typeof (e as Partial<NativeErrorShape>).errno === 'number';
}

/** Converts an error thrown by the addon; anything else is returned unchanged. */
export function toSyscallError(e: unknown): unknown {
  if (e instanceof SyscallError || !isNativeError(e)) return e;
  const err = new SyscallError(e.message, e.code, e.errno, e.syscall, e.path ?? null, e.step ?? null);
  if (e instanceof Error && e.stack) err.stack = e.stack.replace(/^Error/, 'SyscallError');
  return err;
}
