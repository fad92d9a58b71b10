/**
 * The runtime's own error kinds. The domain throws RuntimeError with a kind; the CRI layer
 * maps each kind to one gRPC status code in exactly one place (src/cri/status.ts). Messages
 * are lower-case, without a trailing period, and name the field, id or path concerned.
 */
export type ErrorKind =
  | 'invalid-argument'
  | 'not-found'
  | 'already-exists'
  | 'failed-precondition'
  | 'unavailable'
  | 'unimplemented'
  | 'deadline-exceeded'
  | 'resource-exhausted'
  | 'unauthenticated'
  | 'permission-denied'
  | 'aborted'
  | 'internal'
  /** a failure the caller can do nothing about directly, with a message worth showing */
  | 'unknown';

export class RuntimeError extends Error {
  override readonly name = 'RuntimeError';
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const invalidArgument = (message: string): RuntimeError => new RuntimeError('invalid-argument', message);
export const notFound = (message: string): RuntimeError => new RuntimeError('not-found', message);
export const alreadyExists = (message: string): RuntimeError => new RuntimeError('already-exists', message);
export const failedPrecondition = (message: string): RuntimeError => new RuntimeError('failed-precondition', message);
export const unavailable = (message: string): RuntimeError => new RuntimeError('unavailable', message);
export const unimplemented = (message: string): RuntimeError => new RuntimeError('unimplemented', message);
