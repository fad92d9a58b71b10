/**
 * The single mapping from errors thrown by handlers to gRPC statuses. Deliberate runtime
 * errors keep their message and get their kind's code; a native SyscallError keeps its
 * message (it names the step, syscall and path, which an operator needs) as UNKNOWN; any
 * other exception is a bug: the caller sees UNKNOWN with the request id only, and the
 * stack goes to the log.
 */
import { status as Status, type ServiceError, Metadata } from '@grpc/grpc-js';
import { RuntimeError, type ErrorKind } from '../domain/errors';
import { SyscallError } from '../native/errors';

const codes: Record<ErrorKind, Status> = {
  'invalid-argument': Status.INVALID_ARGUMENT,
  'not-found': Status.NOT_FOUND,
  'already-exists': Status.ALREADY_EXISTS,
  'failed-precondition': Status.FAILED_PRECONDITION,
  unavailable: Status.UNAVAILABLE,
  unimplemented: Status.UNIMPLEMENTED,
  'deadline-exceeded': Status.DEADLINE_EXCEEDED,
  'resource-exhausted': Status.RESOURCE_EXHAUSTED,
  unauthenticated: Status.UNAUTHENTICATED,
  'permission-denied': Status.PERMISSION_DENIED,
  aborted: Status.ABORTED,
  internal: Status.INTERNAL,
  unknown: Status.UNKNOWN,
};

export interface MappedError {
  code: Status;
  details: string;
  /** true when the error is a bug rather than a deliberate answer: log its stack */
  unexpected: boolean;
}

/**
 * The most of a message that goes into a status. The details travel as an HTTP/2 header
 * (grpc-message): a message quoting a 100 KB id made a trailer larger than the client takes,
 * and the connection wedged for every call after it.
 */
export const maxDetailsBytes = 2048;

/** `text`, cut to at most maxDetailsBytes of UTF-8, saying how much was cut. */
export function truncateDetails(text: string): string {
  const bytes = Buffer.byteLength(text);
  if (bytes <= maxDetailsBytes) return text;
  const note = ` ... (${bytes} bytes in all, truncated)`;
  let cut = Buffer.from(text)
    .subarray(0, maxDetailsBytes - Buffer.byteLength(note))
    .toString();
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1); // a multi-byte character cut in two
  return cut + note;
}

export function mapError(err: unknown, requestId: string, aborted: boolean): MappedError {
  if (err instanceof RuntimeError) return { code: codes[err.kind], details: truncateDetails(err.message), unexpected: false };
  if (err instanceof SyscallError) return { code: Status.UNKNOWN, details: truncateDetails(err.message), unexpected: false };
  if (aborted) return { code: Status.CANCELLED, details: 'the call was cancelled', unexpected: false };
  return { code: Status.UNKNOWN, details: `internal error (request ${requestId})`, unexpected: true };
}

export function toServiceError(mapped: MappedError): Partial<ServiceError> {
  return { code: mapped.code, details: mapped.details, metadata: new Metadata() };
}

/** The name of a status code, e.g. NOT_FOUND, for logs and metric labels. */
export function codeName(code: Status): string {
  return Status[code] ?? String(code);
}
