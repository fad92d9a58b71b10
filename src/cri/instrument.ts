/**
 * The per-RPC wrapper (the role of CRI-O's gRPC interceptors): every call gets a request
 * id, a child logger (made when first used), debug log lines of its request and response with secrets redacted,
 * an error line with the gRPC code, count/error/latency metrics labelled by RPC name, an
 * OpenTelemetry span, and an AbortSignal (made when first used) tied to client cancellation and daemon shutdown.
 * Errors become statuses through src/cri/status.ts only.
 */
import { randomFillSync } from 'node:crypto';
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

/**
 * Request ids: 8 random bytes each (16 hex chars are enough to find one call in the logs),
 * taken from a pool that one randomFillSync fills for 512 calls: a randomBytes per call was
 * 2% of a Version call's CPU.
 */
const idPool = Buffer.alloc(4096);
let idPoolOffset = idPool.length;

function newRequestId(): string {
  if (idPoolOffset === idPool.length) {
    randomFillSync(idPool);
    idPoolOffset = 0;
  }
  idPoolOffset += 8;
  return idPool.toString('hex', idPoolOffset - 8, idPoolOffset);
}

/**
 * A call's context. Most calls (Version, the status and list calls kubelet makes every
 * second) log nothing and never look at their signal, so the child logger and the
 * AbortController are made the first time a handler asks for them; a call cancelled before
 * that gets a signal that is already aborted.
 */
class Call implements CallContext {
  private childLog: Logger | null = null;
  private controller: AbortController | null = null;
  /** the client cancelled, its deadline passed, or the daemon stopped it */
  aborted = false;

  constructor(
    readonly requestId: string,
    readonly operation: string,
    private readonly rootLog: Logger,
    readonly deps: CriDeps,
  ) {}

  get log(): Logger {
    return (this.childLog ??= this.rootLog.child({ requestId: this.requestId, operation: this.operation }));
  }

  get signal(): AbortSignal {
    if (this.controller === null) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort();
    }
    return this.controller.signal;
  }

  readonly abort = (): void => {
    if (this.aborted) return;
    this.aborted = true;
    this.controller?.abort();
  };
}

/**
 * The calls in flight that `stopOn` (a shutdown signal) aborts: one listener per signal
 * and a set, rather than an EventTarget listener added and removed on every call.
 */
const liveCalls = new WeakMap<AbortSignal, Set<Call>>();

function liveCallsOf(stopOn: AbortSignal): Set<Call> {
  let calls = liveCalls.get(stopOn);
  if (calls === undefined) {
    const set = new Set<Call>();
    stopOn.addEventListener('abort', () => set.forEach((c) => c.abort()), { once: true });
    liveCalls.set(stopOn, set);
    calls = set;
  }
  return calls;
}

function begin(opts: InstrumentOptions, shape: CallShape, call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>, stopOn: AbortSignal) {
  const requestId = newRequestId();
  const { operation } = shape;
  opts.metrics.operations.inc({ operation });
  const stopTimer = opts.metrics.operationDuration.startTimer({ operation });
  const span = tracer.startSpan(`runtime.v1.${opts.service}/${operation}`, { kind: SpanKind.SERVER });
  if (span.isRecording()) {
    span.setAttributes({ 'rpc.system': 'grpc', 'rpc.service': `runtime.v1.${opts.service}`, 'rpc.method': operation, 'nodecri.request_id': requestId });
  }
  const ctx = new Call(requestId, operation, opts.log, opts.deps);
  if (opts.log.isLevelEnabled('debug')) ctx.log.debug({ request: redact(shape.requestType, call.request) }, 'request');
  // grpc-js emits 'cancelled' when the stream closes, also after the status was sent: the
  // listener goes when the call finishes, so a finished call is never aborted.
  call.once('cancelled', ctx.abort);
  const live = liveCallsOf(stopOn);
  live.add(ctx);
  const finish = (err: unknown | null, response?: unknown): Partial<grpc.ServiceError> | null => {
    live.delete(ctx);
    call.off('cancelled', ctx.abort);
    stopTimer();
    let result: Partial<grpc.ServiceError> | null = null;
    if (err === null) {
      if (opts.log.isLevelEnabled('debug')) ctx.log.debug({ response: redact(shape.responseType, response) }, 'response');
      span.setStatus({ code: SpanStatusCode.OK });
    } else {
      const mapped = mapError(err, requestId, ctx.aborted && !stopOn.aborted);
      const code = stopOn.aborted && mapped.unexpected ? Status.UNAVAILABLE : mapped.code;
      const name = codeName(code);
      opts.metrics.operationErrors.inc({ operation, code: name });
      ctx.log.error({ code: name, ...(mapped.unexpected ? { err } : {}) }, mapped.details);
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

/**
 * Runs `fn` with `span` as the active span, so that the domain's spans are its children.
 * Without a tracer provider every span is the no-op one, with an invalid context that no
 * child would take: then there is no context to set.
 */
function runInSpan<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  if (!trace.isSpanContextValid(span.spanContext())) return fn();
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
