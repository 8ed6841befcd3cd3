// tests/interop/lib/expected.mjs - what the OpenTelemetry JS interop senders (otel_js/send.mjs,
// otel_grpc/send.mjs) share: an exporter wrapper that records every export result, and the
// conversion of a recorded span into the OTLP/JSON shape clew must answer on /api/v3 (what
// otel_js/check.mjs compares). Plain JavaScript with no package imports: the test scripts copy it
// next to the sender in its npm cache directory, where the sender imports it as ./expected.mjs.

// Wraps an exporter to remember every export result: the batch processor only logs failures,
// and a failed export must fail the test with its reason (for gRPC: the status code and
// grpc-message). `successCode` is @opentelemetry/core's ExportResultCode.SUCCESS.
export class CheckedExporter {
  constructor(inner, successCode, label = '') {
    this.inner = inner;
    this.successCode = successCode;
    this.label = label;
    this.results = [];
  }
  export(spans, done) {
    this.inner.export(spans, (result) => {
      this.results.push({
        ok: result.code === this.successCode,
        spans: spans.length,
        error: result.error ? String(result.error.message || result.error) : '',
      });
      done(result);
    });
  }
  shutdown() {
    return this.inner.shutdown();
  }
  forceFlush() {
    return this.inner.forceFlush ? this.inner.forceFlush() : Promise.resolve();
  }
}

export const nsToHr = (ns) => [Number(ns / 1000000000n), Number(ns % 1000000000n)];
export const hrToNs = (hr) => (BigInt(hr[0]) * 1000000000n + BigInt(hr[1])).toString();

// How the JS exporters map attribute values onto AnyValue: integral numbers become intValue
// (a decimal string on clew's output, wire.md §4.1), other numbers doubleValue.
export function anyValue(v) {
  if (typeof v === 'string') {
    return { stringValue: v };
  }
  if (typeof v === 'boolean') {
    return { boolValue: v };
  }
  if (typeof v === 'number') {
    return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  }
  if (Array.isArray(v)) {
    return { arrayValue: { values: v.map(anyValue) } };
  }
  throw new Error(`unexpected attribute value ${JSON.stringify(v)}`);
}
export const keyValues = (attrs) =>
  Object.entries(attrs || {}).map(([key, value]) => ({ key, value: anyValue(value) }));

// JS SpanKind is 0-based (INTERNAL=0); OTLP's enum has UNSPECIFIED=0 first.
const otlpKind = (k) => k + 1;

// A finished span as the expected-file records it, tagged with the exporter flavour.
export function describe(span, label) {
  const ctx = span.spanContext();
  return {
    flavour: label,
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: span.parentSpanContext ? span.parentSpanContext.spanId : '',
    name: span.name,
    kind: otlpKind(span.kind),
    service: span.resource.attributes['service.name'],
    resource: keyValues(span.resource.attributes),
    scope: { name: span.instrumentationScope.name, version: span.instrumentationScope.version },
    startTimeUnixNano: hrToNs(span.startTime),
    endTimeUnixNano: hrToNs(span.endTime),
    attributes: keyValues(span.attributes),
    events: span.events.map((e) => ({
      name: e.name,
      timeUnixNano: hrToNs(e.time),
      attributes: keyValues(e.attributes),
    })),
    links: span.links.map((l) => ({
      traceId: l.context.traceId,
      spanId: l.context.spanId,
      attributes: keyValues(l.attributes),
    })),
    status: { code: span.status.code, message: span.status.message || '' },
  };
}
