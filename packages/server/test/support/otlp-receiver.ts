import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One span as an OTLP/HTTP JSON export carries it, flattened for assertions. */
export interface ReceivedSpan {
  /** 32 hex digits (OTLP JSON encodes ids as hex, not base64). */
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP's SpanKind: 2 SERVER, 3 CLIENT. */
  kind: number;
  /** OTLP's status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  statusMessage: string;
  /** String, int and bool attribute values by key. */
  attributes: Record<string, string | number | boolean>;
  /** The resource's `service.name`. */
  serviceName: string;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpKeyValue {
  key: string;
  value: OtlpValue;
}
interface OtlpExport {
  resourceSpans?: {
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: {
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        status?: { code?: number; message?: string };
        attributes?: OtlpKeyValue[];
      }[];
    }[];
  }[];
}

function scalarOf(v: OtlpValue): string | number | boolean {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.boolValue !== undefined) return v.boolValue;
  return v.doubleValue ?? '';
}

function attributesOf(list: OtlpKeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) out[kv.key] = scalarOf(kv.value);
  return out;
}

/**
 * A real OTLP/HTTP trace receiver for tests, like a collector's `otlphttp` receiver: accepts `POST /v1/traces` with
 * a JSON `ExportTraceServiceRequest` and records every span; anything else gets 404. Protobuf bodies are refused
 * with 415 (the exporter under test sends JSON).
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Export requests received. */
  requests = 0;
  private server: Server | undefined;
  /** `http://127.0.0.1:<port>/v1/traces` once started. */
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
          res.writeHead(415).end();
          return;
        }
        this.requests++;
        this.record(JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/traces`;
    return this;
  }

  private record(body: OtlpExport): void {
    for (const rs of body.resourceSpans ?? []) {
      const serviceName = String(attributesOf(rs.resource?.attributes)['service.name'] ?? '');
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? '',
            name: s.name,
            kind: s.kind,
            statusCode: s.status?.code ?? 0,
            statusMessage: s.status?.message ?? '',
            attributes: attributesOf(s.attributes),
            serviceName,
          });
        }
      }
    }
  }

  /** The spans of one transaction (attribute `dtx.gid`). */
  spansOf(gid: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.attributes['dtx.gid'] === gid);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}
