/**
 * The single prom-client registry and every metric the daemon exports. Names share the
 * `nodecri_` prefix; facilities add theirs here so that the set is visible in one place.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  operations: Counter<'operation'>;
  operationErrors: Counter<'operation' | 'code'>;
  operationDuration: Histogram<'operation'>;
  /** image pulls finished, by result: success or failure */
  imagePulls: Counter<'result'>;
  /** compressed layer bytes received from registries */
  imagePullBytes: Counter;
  imagePullDuration: Histogram;
  /**
   * container output bytes dropped because the log could not be written (a full disk),
   * per container; a container's series is removed with the container
   */
  containerLogDroppedBytes: Counter<'container_id'>;
  /**
   * the time of each step of an operation (RunPodSandbox, CreateContainer, StartContainer),
   * observed through src/obs/steps.ts
   */
  stepDuration: Histogram<'operation' | 'step'>;
}

/**
 * Buckets from 25 µs to 2 min: Version and list calls take well under a millisecond,
 * RunPodSandbox tens of milliseconds, a pull or a stop with a grace period much longer.
 */
const operationBuckets = [0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * Buckets from 10 µs to a minute, about four per decade: a name reservation takes
 * microseconds, a mount or a clone a millisecond or so, a CNI ADD tens of milliseconds.
 */
const stepBuckets = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    operations: new Counter({
      name: 'nodecri_operations_total',
      help: 'CRI operations received, by RPC name',
      labelNames: ['operation'],
      registers: [registry],
    }),
    operationErrors: new Counter({
      name: 'nodecri_operations_errors_total',
      help: 'CRI operations that ended in an error, by RPC name and gRPC status code',
      labelNames: ['operation', 'code'],
      registers: [registry],
    }),
    operationDuration: new Histogram({
      name: 'nodecri_operations_duration_seconds',
      help: 'Time to answer a CRI operation, by RPC name',
      labelNames: ['operation'],
      buckets: operationBuckets,
      registers: [registry],
    }),
    imagePulls: new Counter({
      name: 'nodecri_image_pulls_total',
      help: 'Image pulls finished, by result (success, failure); concurrent requests for one image count once',
      labelNames: ['result'],
      registers: [registry],
    }),
    imagePullBytes: new Counter({
      name: 'nodecri_image_pull_bytes_total',
      help: 'Layer bytes received from registries (as sent, compressed)',
      registers: [registry],
    }),
    imagePullDuration: new Histogram({
      name: 'nodecri_image_pull_duration_seconds',
      help: 'Time from the start of an image pull to its image record, successful pulls only',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    }),
    containerLogDroppedBytes: new Counter({
      name: 'nodecri_container_log_dropped_bytes_total',
      help: 'Container output bytes (record text) dropped because the CRI log could not be written (disk full, quota, I/O error), by container; only whole records are dropped',
      labelNames: ['container_id'],
      registers: [registry],
    }),
    stepDuration: new Histogram({
      name: 'nodecri_step_duration_seconds',
      help: 'Time of one step of a CRI operation (RunPodSandbox, CreateContainer, StartContainer), by operation and step; steps that overlap are each timed whole, failed steps too',
      labelNames: ['operation', 'step'],
      buckets: stepBuckets,
      registers: [registry],
    }),
  };
}
