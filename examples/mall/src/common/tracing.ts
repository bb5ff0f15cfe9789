/**
 * OpenTelemetry traces of a service (tutorial chapter 9): a tracer of its own, named `Telemetry.Name`
 * (`user.api`, `order.rpc`, …), and W3C trace context (`traceparent`, baggage) read from and written to HTTP
 * headers and gRPC metadata. Export is off unless `Telemetry.Endpoint` is set (OTLP over HTTP) or `Batcher` is
 * `console`; propagation works either way, so a trace that enters a service leaves it with its calls.
 *
 * @module
 */
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { ConfigError, type TelemetryConf } from './config.js';

/**
 * Installs the W3C propagator and an AsyncLocalStorage context manager as OpenTelemetry's globals, unless some
 * are installed already (an app's own OpenTelemetry SDK wins). Idempotent. The dtx SDK injects the active context
 * with these when it calls the coordinator.
 */
export function installPropagation(): void {
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  const manager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(manager)) manager.disable(); // one is installed already: keep that one
}

/** Reads string values from a record of headers or gRPC metadata (`metadata.getMap()`). */
export const recordGetter: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    if (typeof v === 'string') return v;
    if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
    return undefined;
  },
};

/** The tracer of one service and how to flush it. */
export class ServiceTracing {
  readonly tracer: Tracer;
  readonly #provider: BasicTracerProvider | undefined;

  constructor(conf: TelemetryConf) {
    installPropagation();
    const exporting = conf.Endpoint !== '' || conf.Batcher === 'console';
    if (!exporting) {
      // No provider: spans are non-recording and carry their parent's context, so propagation still works.
      this.tracer = trace.getTracer('mall');
      this.#provider = undefined;
      return;
    }
    let exporter: OTLPTraceExporter | ConsoleSpanExporter;
    if (conf.Batcher === 'console') exporter = new ConsoleSpanExporter();
    else if (conf.Batcher === 'otlp') exporter = new OTLPTraceExporter({ url: conf.Endpoint });
    else {
      throw new ConfigError(
        `Telemetry.Batcher '${conf.Batcher}': use otlp (OTLP over HTTP; Jaeger ≥ 1.35 takes it on :4318/v1/traces) or console`,
      );
    }
    this.#provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': conf.Name }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(conf.Sampler) }),
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 200 })],
    });
    this.tracer = this.#provider.getTracer('mall');
  }

  /** A server span continuing the trace context of `carrier` (HTTP headers or gRPC metadata). */
  serverSpan(name: string, carrier: Record<string, unknown>): { span: Span; ctx: Context } {
    const parent = propagation.extract(ROOT_CONTEXT, carrier, recordGetter);
    const span = this.tracer.startSpan(name, { kind: SpanKind.SERVER }, parent);
    return { span, ctx: trace.setSpan(parent, span) };
  }

  /** A client span under the active context; `inject` writes its context into an outgoing carrier. */
  clientSpan(name: string): { span: Span; ctx: Context; inject: (set: (key: string, value: string) => void) => void } {
    const span = this.tracer.startSpan(name, { kind: SpanKind.CLIENT }, context.active());
    const ctx = trace.setSpan(context.active(), span);
    return {
      span,
      ctx,
      inject: (set) => propagation.inject(ctx, undefined, { set: (_c, k, v) => set(k, v) }),
    };
  }

  /** Flushes and stops the exporter. */
  async shutdown(): Promise<void> {
    await this.#provider?.shutdown();
  }
}

/** Ends a span with an error status when `error` is set. */
export function endSpan(span: Span, error?: string): void {
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  span.end();
}
