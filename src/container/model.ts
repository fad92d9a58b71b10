/**
 * A container as the domain keeps it: what kubelet asked for (its ContainerSpec, which
 * the status is made from), what was made for it, and its lifecycle. Persisted as JSON
 * after every change of state, so that a restarted daemon knows every container, its
 * process and its exit.
 */
import type { Resources } from '../linux/cgroups';
import type { ContainerSpec } from './spec';

export type ContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';

/**
 * The record format. 1 kept the CRI ContainerConfig (`config`) where 2 keeps the spec; a
 * start that finds a record of 1 stops, naming it (no node runs them): see restore.ts.
 */
export const containerRecordVersion = 2;

export interface ContainerRecord {
  version: typeof containerRecordVersion;
  id: string;
  name: string;
  sandboxId: string;
  spec: ContainerSpec;
  /** the image as resolved at create: its id and the reference kubelet gave */
  image: { id: string; ref: string; name: string };
  state: ContainerState;
  /** nanoseconds since the epoch, decimal strings; "0" when not yet */
  createdAt: string;
  startedAt: string;
  finishedAt: string;
  exitCode: number;
  reason: string;
  message: string;
  /** <root>/containers/<id>: config.json and this record */
  stateDir: string;
  /** <runroot>/containers/<id>: the rootfs mount point and the stdio FIFOs */
  runDir: string;
  rootfs: string;
  /** the overlay's upper dir: the container's writable layer, for its disk usage */
  upperDir: string;
  logPath: string;
  cgroupPath: string;
  resources: Resources | null;
  /** the signal StopContainer sends first */
  stopSignal: string;
  /** the container's process while it has one: pid and its start time (clock ticks) */
  pid: number | null;
  pidStartTime: string | null;
}
