/**
 * The per-RPC wrapper (the role of CRI-O's gRPC interceptors): every call gets a request
 * id, a child logger, debug log lines of its request and response with secrets redacted,
 * an error line with the gRPC code, count/error/latency metrics labelled by RPC name, an
 * OpenTelemetry span, and an AbortSignal tied to client cancellation and daemon shutdown.
 * Errors become statuses through src/cri/status.ts only.
 */
import { randomBytes } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { Metadata, status as Status } from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode, context, trace, type Span } from '@opentelemetry/api';
import type { Logger } from '../obs/logger';
import type { Metrics } from '../obs/metrics';
import type { CallContext } from './context';
import type { CriDeps } from './deps';
import type { Faults } from '../util/faults';
import { redact } from './proto';
import { codeName, mapError, toServiceError } from './status';

const tracer = trace.getTracer('nodecri');

export interface InstrumentOptions {
  service: string;
  deps: CriDeps;
  log: Logger;
  metrics: Metrics;
  /** Aborted when a graceful shutdown begins: streams end at once. */
  draining: AbortSignal;
  /** Aborted when the shutdown bound has passed: unary calls still running are cancelled. */
  forced: AbortSignal;
  faults: Faults;
}

interface CallShape {
  operation: string;
  requestType: string;
  responseType: string;
}

/** A short id: 16 hex chars are enough to find one call in the logs. */
function newRequestId(): string {
  return randomBytes(8).toString('hex');
}

function begin(opts: InstrumentOptions, shape: CallShape, call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>, stopOn: AbortSignal) {
  const requestId = newRequestId();
  const { operation } = shape;
  opts.metrics.operations.inc({ operation });
  const stopTimer = opts.metrics.operationDuration.startTimer({ operation });
  const span = tracer.startSpan(`runtime.v1.${opts.service}/${operation}`, {
    kind: SpanKind.SERVER,
    attributes: { 'rpc.system': 'grpc', 'rpc.service': `runtime.v1.${opts.service}`, 'rpc.method': operation, 'nodecri.request_id': requestId },
  });
  const log = opts.log.child({ requestId, operation });
  if (log.isLevelEnabled('debug')) log.debug({ request: redact(shape.requestType, call.request) }, 'request');
  const controller = new AbortController();
  const abort = () => controller.abort();
  call.once('cancelled', abort);
  stopOn.addEventListener('abort', abort, { once: true });
  const ctx: CallContext = { requestId, operation, log, signal: controller.signal, deps: opts.deps };
  const finish = (err: unknown | null, response?: unknown): Partial<grpc.ServiceError> | null => {
    stopOn.removeEventListener('abort', abort);
    stopTimer();
    let result: Partial<grpc.ServiceError> | null = null;
    if (err === null) {
      if (log.isLevelEnabled('debug')) log.debug({ response: redact(shape.responseType, response) }, 'response');
      span.setStatus({ code: SpanStatusCode.OK });
    } else {
      const mapped = mapError(err, requestId, controller.signal.aborted && !stopOn.aborted);
      const code = stopOn.aborted && mapped.unexpected ? Status.UNAVAILABLE : mapped.code;
      const name = codeName(code);
      opts.metrics.operationErrors.inc({ operation, code: name });
      log.error({ code: name, ...(mapped.unexpected ? { err } : {}) }, mapped.details);
      span.setStatus({ code: SpanStatusCode.ERROR, message: mapped.details });
      span.setAttribute('rpc.grpc.status_code', code);
      result = toServiceError({ ...mapped, code });
      const md = result.metadata ?? new Metadata();
      md.set('nodecri-request-id', requestId);
      result.metadata = md;
    }
    span.end();
    return result;
  };
  return { ctx, span, finish };
}

function runInSpan<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  return context.with(trace.setSpan(context.active(), span), fn);
}

/** Runs the handler, after the injected delay for this RPC if any. */
async function invoke<T>(opts: InstrumentOptions, operation: string, fn: () => Promise<T>): Promise<T> {
  const delay = opts.faults.delayMs(operation);
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  return fn();
}

export function instrumentUnary(opts: InstrumentOptions, shape: CallShape, impl: (req: unknown, ctx: CallContext) => Promise<unknown>): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const { ctx, span, finish } = begin(opts, shape, call, opts.forced);
    runInSpan(span, () => invoke(opts, shape.operation, () => impl(call.request, ctx))).then(
      (response) => {
        finish(null, response);
        callback(null, response);
      },
      (err: unknown) => callback(finish(err)),
    );
  };
}

export function instrumentServerStream(
  opts: InstrumentOptions,
  shape: CallShape,
  impl: (req: unknown, ctx: CallContext, send: (m: unknown) => void) => Promise<void>,
): grpc.handleServerStreamingCall<unknown, unknown> {
  return (call) => {
    const { ctx, span, finish } = begin(opts, shape, call, opts.draining);
    const send = (m: unknown) => {
      if (!call.cancelled && call.writable) call.write(m);
    };
    runInSpan(span, () => invoke(opts, shape.operation, () => impl(call.request, ctx, send))).then(
      () => {
        finish(null, '[stream]');
        call.end();
      },
      (err: unknown) => {
        const e = finish(err);
        // grpc-js ends a server stream with a status when 'error' is emitted on it.
        if (!call.cancelled) call.emit('error', e);
      },
    );
  };
}
