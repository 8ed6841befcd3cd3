// Sends multi-service traces to clew's OTLP/gRPC receiver with the real OpenTelemetry JS SDK and
// its gRPC exporter (@opentelemetry/exporter-trace-otlp-grpc, on @grpc/grpc-js), once without
// compression and once with grpc-encoding gzip.
//
// What the SDK recorded is captured by an in-memory exporter attached to every provider as a
// second processor and written to the expected-file in the shape tests/interop/otel_js/check.mjs
// reads (that script then compares it with what clew's query APIs answer). Any export that does
// not report success fails the check.
//
// usage: node send.mjs <receiver url, e.g. http://127.0.0.1:4317> <expected.json>
import { writeFileSync } from 'node:fs';
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { CheckedExporter, describe, nsToHr } from './expected.mjs';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';

const [url, expectedPath] = process.argv.slice(2);
if (!url || !expectedPath) {
  console.error('usage: node send.mjs <receiver url> <expected.json>');
  process.exit(2);
}

const SERVICES = ['frontend', 'orders', 'billing', 'stock'];
const TRACES_PER_FLAVOUR = 4;
const FLAVOURS = [
  { label: 'otlp-grpc', make: () => new OTLPTraceExporter({ url, timeoutMillis: 10000 }) },
  {
    label: 'otlp-grpc-gzip',
    make: () => new OTLPTraceExporter({ url, compression: 'gzip', timeoutMillis: 10000 }),
  },
];

// ---- the workload: frontend -> orders -> {billing, stock}, orders -> stock via a queue ----

function child(provider, name, kind, parent, startNs, extra = {}) {
  const tracer = provider.getTracer('clew-interop-grpc', '0.4.0');
  const ctx = parent ? trace.setSpan(context.active(), parent) : context.active();
  return tracer.startSpan(name, { kind, startTime: nsToHr(startNs), ...extra }, ctx);
}

// One trace of 9 spans over 4 services; times at odd nanosecond offsets so that any rounding
// shows. The error span carries an exception event and an ERROR status with a message.
function sendTrace(p, t0, n) {
  const at = (off) => t0 + BigInt(off);
  const end = (span, off) => span.end(nsToHr(at(off)));

  const root = child(p.frontend, 'GET /cart', SpanKind.SERVER, null, at(0), {
    attributes: {
      'http.request.method': 'GET',
      'url.path': '/cart',
      'http.response.status_code': 200,
      'trace.index': n,
      'user.premium': n % 2 === 0,
      'sample.ratio': 0.25,
      'tags': ['a', 'b c', 'ünïcödé'],
    },
  });
  root.addEvent('request.parsed', { 'body.bytes': 2048, 'client': '192.0.2.7' }, nsToHr(at(10007)));

  const call = child(p.frontend, 'POST orders', SpanKind.CLIENT, root, at(20011));
  const orders = child(p.orders, 'POST /orders', SpanKind.SERVER, call, at(30013));
  orders.setAttributes({ 'order.items': 3, 'order.total': 59.9 });

  const bill = child(p.orders, 'bill', SpanKind.CLIENT, orders, at(40017));
  const billing = child(p.billing, 'POST /invoices', SpanKind.SERVER, bill, at(50019));
  billing.addEvent('exception', {
    'exception.type': 'InvoiceRejected',
    'exception.message': 'tax id missing',
  }, nsToHr(at(60023)));
  billing.setStatus({ code: SpanStatusCode.ERROR, message: 'invoice rejected: tax id missing' });
  end(billing, 70029);
  end(bill, 80031);

  const enqueue = child(p.orders, 'publish stock.reserve', SpanKind.PRODUCER, orders, at(90037));
  enqueue.setAttribute('messaging.destination.name', 'stock');
  end(enqueue, 95041);
  const consume = child(p.stock, 'process stock.reserve', SpanKind.CONSUMER, enqueue, at(100043), {
    links: [{ context: root.spanContext(), attributes: { 'link.kind': 'origin', 'link.n': n } }],
  });
  const db = child(p.stock, 'UPDATE stock', SpanKind.INTERNAL, consume, at(110047));
  db.setAttributes({ 'db.system': 'postgresql', 'db.rows': [1, 2, 3] });
  end(db, 120053);
  end(consume, 130057);

  orders.setStatus({ code: SpanStatusCode.OK });
  end(orders, 140059);
  end(call, 150061);
  end(root, 160063);
}

// ---- main ----

const expected = { traces: {}, exports: [] };
const baseNs = BigInt(Date.now() - 60000) * 1000000n;
let traceIndex = 0;

for (const flavour of FLAVOURS) {
  const memory = new InMemorySpanExporter();
  const providers = {};
  const exporters = [];
  for (const service of SERVICES) {
    const exporter = new CheckedExporter(flavour.make(), ExportResultCode.SUCCESS, flavour.label);
    exporters.push({ service, exporter });
    providers[service] = new BasicTracerProvider({
      resource: resourceFromAttributes({
        'service.name': service,
        'service.namespace': 'shop',
        'deployment.environment.name': 'interop-grpc',
        'process.pid': process.pid,
      }),
      spanProcessors: [
        // small batches, so several Export calls run at once on each gRPC channel
        new BatchSpanProcessor(exporter, { scheduledDelayMillis: 50, maxExportBatchSize: 4 }),
        new SimpleSpanProcessor(memory),
      ],
    });
  }
  for (let i = 0; i < TRACES_PER_FLAVOUR; i++) {
    const t0 = baseNs + BigInt(traceIndex) * 10000000n + 7919n;
    sendTrace(providers, t0, traceIndex++);
  }
  for (const p of Object.values(providers)) {
    await p.forceFlush();
  }
  for (const span of memory.getFinishedSpans()) {
    const d = describe(span, flavour.label);
    (expected.traces[d.traceId] ||= { flavour: flavour.label, spans: [] }).spans.push(d);
  }
  for (const p of Object.values(providers)) {
    await p.shutdown();
  }
  for (const { service, exporter } of exporters) {
    expected.exports.push({
      flavour: flavour.label,
      service,
      requests: exporter.results.length,
      spans: exporter.results.reduce((n, r) => n + r.spans, 0),
      failures: exporter.results.filter((r) => !r.ok).map((r) => r.error),
    });
  }
}

writeFileSync(expectedPath, JSON.stringify(expected, null, 1));
const nspans = Object.values(expected.traces).reduce((n, t) => n + t.spans.length, 0);
console.log(`send: ${Object.keys(expected.traces).length} traces, ${nspans} spans recorded by the SDK`);
