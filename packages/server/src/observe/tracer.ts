import type { TraceContext } from './trace-context.js';

/**
 * What the core asks of tracing when it is on (config key `Tracing.Exporter`); when it is off the core has no
 * tracer at all and only forwards the stored {@link TraceContext}. The implementation over OpenTelemetry is
 * observe/tracing.ts.
 *
 * @module
 */

/** How a span ended. */
export interface SpanEnd {
  /** The branch's result word (SUCCESS, FAILURE, ONGOING, ERROR), recorded as `dtx.result`. */
  result?: string;
  /** Set when the call failed: the span ends with error status and this message. */
  error?: string;
}

/** One started span. */
export interface DtxSpan {
  /** The span's own context, to store (an API call's span) or to send to a branch (a branch call's span). */
  readonly context: TraceContext;
  /** Ends the span. */
  end(how?: SpanEnd): void;
}

/** The branch call a span is made for. */
export interface BranchSpanInfo {
  gid: string;
  transType: string;
  branchId: string;
  op: string;
  url: string;
}

/** Makes dtx's spans. Each server instance has its own (its own provider, resource and exporter). */
export interface DtxTracer {
  /**
   * A SERVER span for an API call that creates or changes a transaction, named `dtx <verb>`.
   * @param verb `submit`, `prepare`, `abort`, `registerBranch`, `forceStop`
   * @param parent the caller's trace context; undefined starts a new trace (sampled per `Tracing.SampleRatio`)
   */
  startCall(verb: string, parent: TraceContext | undefined, gid: string, transType: string): DtxSpan;
  /**
   * A CLIENT span for one branch call, named `dtx <trans type> <op> <branch id>`.
   * @param parent the transaction's stored context; undefined (a transaction from before tracing) starts a trace
   */
  startBranch(parent: TraceContext | undefined, call: BranchSpanInfo): DtxSpan;
}
