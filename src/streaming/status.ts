/**
 * What the error stream carries when a remote command ends, byte for byte as kubelet's
 * streaming library writes it (remotecommand/exec.go, attach.go, httpstream.go):
 *
 * - v4 (SPDY v4.channel.k8s.io, WebSocket v4/v5.channel.k8s.io): a metav1.Status as Go's
 *   encoding/json marshals it (field order of the struct, empty fields omitted, but
 *   `metadata` always present since omitempty does not omit a struct);
 * - earlier versions: nothing on success, the status's message on failure.
 */

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface Status {
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes?: StatusCause[] };
  code?: number;
}

export const success: Status = { status: 'Success' };

/** The status of a command that exited with a code other than 0 (kubelet's NonZeroExitCode). */
export function nonZeroExit(exitCode: number, cmd: readonly string[]): Status {
  return {
    status: 'Failure',
    // containerd's and CRI-O's ExecInContainer error text, which kubelet wraps the same way
    message: `command terminated with non-zero exit code: error executing command ${goSlice(cmd)}, exit code ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

/** apierrors.NewInternalError: the domain call failed (not an exit code). */
export function internalError(message: string): Status {
  return {
    status: 'Failure',
    message: `Internal error occurred: ${message}`,
    reason: 'InternalError',
    details: { causes: [{ message }] },
    code: 500,
  };
}

/** The v4 wire form: json.Marshal(metav1.Status), key order as Go writes it. */
export function encodeStatusV4(s: Status): Buffer {
  const out: Record<string, unknown> = { metadata: {}, status: s.status };
  if (s.message) out.message = s.message;
  if (s.reason) out.reason = s.reason;
  if (s.details) out.details = s.details;
  if (s.code) out.code = s.code;
  return Buffer.from(JSON.stringify(out));
}

/** The v1–v3 wire form: nothing on success, the message otherwise. */
export function encodeStatusV1(s: Status): Buffer | null {
  return s.status === 'Success' ? null : Buffer.from(s.message ?? '');
}

/** Go's %v of a []string: [a b c] */
function goSlice(items: readonly string[]): string {
  return `[${items.join(' ')}]`;
}
