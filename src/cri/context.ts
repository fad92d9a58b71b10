/** What every CRI handler receives besides its request. */
import type { Logger } from '../obs/logger';
import type { CriDeps } from './deps';

export interface CallContext {
  /** Unique per call; in every log line of the call and in the error's metadata. */
  requestId: string;
  /** The RPC name, e.g. "RunPodSandbox". */
  operation: string;
  log: Logger;
  /** Aborted when the client cancels or its deadline passes, or the daemon shuts down. */
  signal: AbortSignal;
  deps: CriDeps;
}
