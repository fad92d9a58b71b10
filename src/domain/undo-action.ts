/**
 * What an operation's journal records before each step: enough to undo the step's
 * resource with no other state, after a crash, by a daemon that knows nothing else of the
 * operation. Plain data (JSON lines on disk).
 */
import type { PodNetworkRequest } from '../network/pod-network';

export type UndoAction =
  /** a directory: every mount at or under it is detached, then it is removed whole */
  | { kind: 'tree'; path: string }
  | { kind: 'file'; path: string }
  /** a mount point, unmounted (lazily) if mounted */
  | { kind: 'mount'; path: string }
  /** a cgroup: every process in it and its children is killed, then it is removed (or kept, `keep`) */
  | { kind: 'cgroup'; path: string; keep?: boolean }
  /** a CNI attachment: DEL of the chain with the config ADD was given (the cached result when there is one) */
  | { kind: 'network'; network: string; config: Record<string, unknown>; request: PodNetworkRequest }
  /** a container's writable layer and work dir in the image store */
  | { kind: 'rootfs'; containerId: string };
