/**
 * OpenTelemetry tracing of one dtx server: its own tracer provider (resource `service.name`, a ParentBased
 * TraceIdRatio sampler, an exporter), handed down explicitly. Nothing is registered globally — no global tracer
 * provider, propagator or context manager — so several servers (and the application around them) can each
 * trace on their own in one process. Loaded only when `Tracing.Exporter` is not `none`.
 *
 * @module
 */
import {
  type Attributes,
  type Context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { type ExportResult, ExportResultCode, TraceState } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { errorMessage } from '../util/error-message.js';
import type { Logger } from './logger.js';
import { formatTraceparent, type TraceContext, traceparentParts } from './trace-context.js';
import type { BranchSpanInfo, DtxSpan, DtxTracer, SpanEnd } from './tracer.js';

/** Where spans go: OTLP over HTTP (JSON), or the console (stdout). */
export type TracingExporter = 'otlp' | 'console';

/** What tracing is built from (config keys `Tracing.*`). */
export interface TracingOptions {
  /** `Tracing.Exporter`. */
  exporter: TracingExporter;
  /** `Tracing.Endpoint`: the OTLP/HTTP traces URL, e.g. `http://127.0.0.1:4318/v1/traces`. */
  endpoint: string;
  /** `Tracing.ServiceName`: the resource's `service.name`. */
  serviceName: string;
  /** `Tracing.SampleRatio`: the share of new traces (no sampled parent) that are recorded, 0 to 1. */
  sampleRatio: number;
  /** `service.version` of the resource. */
  version: string;
  /** Where export failures are reported. */
  log: Logger;
}

/** A server's tracing: its tracer, and the shutdown that flushes what is not exported yet. */
export interface Tracing {
  readonly tracer: DtxTracer;
  /** Export the spans still buffered, then stop. Never rejects: a failure is logged. */
  shutdown(): Promise<void>;
}

/** Start the tracing of one server. */
export function startTracing(o: TracingOptions): Tracing {
  const exporter = new LoggedExporter(
    o.exporter === 'otlp' ? new OTLPTraceExporter({ url: o.endpoint }) : new ConsoleSpanExporter(),
    o.exporter === 'otlp' ? o.endpoint : 'console',
    o.log,
  );
  const processor: SpanProcessor =
    o.exporter === 'otlp' ? new BatchSpanProcessor(exporter) : new SimpleSpanProcessor(exporter);
  const provider = new BasicTracerProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({ 'service.name': o.serviceName, 'service.version': o.version }),
    ),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(o.sampleRatio) }),
    spanProcessors: [processor],
  });
  const tracer = new OtelDtxTracer(provider.getTracer('dtx', o.version));
  let stopping: Promise<void> | undefined;
  return {
    tracer,
    shutdown() {
      stopping ??= boundedShutdown(provider, o.log);
      return stopping;
    },
  };
}

/** How long a shutdown waits for the last spans to be exported (the exporter retries an unreachable collector). */
const SHUTDOWN_GRACE_MS = 5_000;

/** Shut the provider down (which exports what is buffered), waiting at most {@link SHUTDOWN_GRACE_MS}. */
async function boundedShutdown(provider: BasicTracerProvider, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), SHUTDOWN_GRACE_MS);
  });
  try {
    const done = await Promise.race([provider.shutdown().then(() => 'done' as const), late]);
    if (done === 'late') log.warn('tracing shutdown: spans not exported within 5 s were dropped');
  } catch (err) {
    log.warn('tracing shutdown: the last spans could not be exported', { error: errorMessage(err) });
  } finally {
    clearTimeout(timer);
  }
}

/** The context of a stored or received trace context, as the parent of a span. */
function parentContext(parent: TraceContext | undefined): Context {
  if (parent === undefined) return ROOT_CONTEXT;
  const { traceId, spanId, flags } = traceparentParts(parent.traceparent);
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId,
    spanId,
    traceFlags: flags,
    isRemote: true,
    ...(parent.tracestate ? { traceState: new TraceState(parent.tracestate) } : {}),
  });
}

/** {@link DtxTracer} over an OpenTelemetry tracer. */
class OtelDtxTracer implements DtxTracer {
  constructor(private readonly tracer: Tracer) {}

  startCall(verb: string, parent: TraceContext | undefined, gid: string, transType: string): DtxSpan {
    const attributes: Attributes = { 'dtx.gid': gid };
    if (transType) attributes['dtx.trans_type'] = transType;
    return this.start(`dtx ${verb}`, SpanKind.SERVER, attributes, parent);
  }

  startBranch(parent: TraceContext | undefined, c: BranchSpanInfo): DtxSpan {
    const attributes: Attributes = {
      'dtx.gid': c.gid,
      'dtx.trans_type': c.transType,
      'dtx.branch_id': c.branchId,
      'dtx.op': c.op,
      'dtx.url': c.url,
    };
    return this.start(`dtx ${c.transType} ${c.op} ${c.branchId}`, SpanKind.CLIENT, attributes, parent);
  }

  private start(name: string, kind: SpanKind, attributes: Attributes, parent: TraceContext | undefined): DtxSpan {
    const span = this.tracer.startSpan(name, { kind, attributes }, parentContext(parent));
    const sc = span.spanContext();
    const context: TraceContext = { traceparent: formatTraceparent(sc.traceId, sc.spanId, sc.traceFlags) };
    if (parent?.tracestate) context.tracestate = parent.tracestate;
    return {
      context,
      end(how: SpanEnd = {}) {
        if (how.result !== undefined) span.setAttribute('dtx.result', how.result);
        if (how.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: how.error });
        span.end();
      },
    };
  }
}

/**
 * An exporter that logs when exporting starts failing (the collector is down, say) and when it works again,
 * once each: spans are never worth a log line per batch.
 */
class LoggedExporter implements SpanExporter {
  private failing = false;

  constructor(
    private readonly inner: SpanExporter,
    private readonly target: string,
    private readonly log: Logger,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS && !this.failing) {
        this.failing = true;
        this.log.warn('trace export failed; spans are dropped until it works again', {
          exporter: this.target,
          error: result.error ? errorMessage(result.error) : 'unknown',
        });
      } else if (result.code === ExportResultCode.SUCCESS && this.failing) {
        this.failing = false;
        this.log.info('trace export works again', { exporter: this.target });
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
