/**
 * OpenTelemetry tracing. Handlers always create spans through @opentelemetry/api, which is
 * a no-op until a provider is registered: with tracing off the cost is a few function
 * calls. With tracing on and an endpoint set, spans are batched to an OTLP/HTTP collector.
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';

export interface TracingOptions {
  enabled: boolean;
  endpoint: string;
  samplingRate: number;
  serviceVersion: string;
}

export interface Tracing {
  shutdown(): Promise<void>;
}

export function startTracing(opts: TracingOptions): Tracing {
  if (!opts.enabled || opts.endpoint === '') return { shutdown: async () => {} };
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'nodecri', 'service.version': opts.serviceVersion }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(opts.samplingRate) }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: opts.endpoint }))],
  });
  trace.setGlobalTracerProvider(provider);
  return {
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}
