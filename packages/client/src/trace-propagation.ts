/**
 * Trace context propagation of the SDK's outgoing calls (to the coordinator, and to the branches the SDK calls
 * itself): the active context is injected with the application's propagator, as OpenTelemetry instrumentation
 * libraries do. It is a no-op unless the application registered a propagator (e.g. the W3C one, through the
 * OpenTelemetry SDK) and a span is active; then the coordinator receives `traceparent` / `tracestate` and
 * continues the trace to every branch.
 *
 * @module
 */

import { context, propagation, type TextMapSetter } from '@opentelemetry/api';

/** What the metadata injection needs of grpc-js's `Metadata` (kept structural: the core imports no gRPC types). */
interface MetadataLike {
  set(key: string, value: string): void;
}

const metadataSetter: TextMapSetter<MetadataLike> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

/** Adds the active trace context to HTTP headers (in place). */
export function injectTraceHeaders(headers: Record<string, string>): void {
  propagation.inject(context.active(), headers);
}

/** Adds the active trace context to gRPC metadata (in place). */
export function injectTraceMetadata(metadata: MetadataLike): void {
  propagation.inject(context.active(), metadata, metadataSetter);
}
