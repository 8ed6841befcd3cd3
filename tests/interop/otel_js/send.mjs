// Sends multi-service traces to a clew OTLP/HTTP receiver with the real OpenTelemetry JS SDK,
// once per exporter flavour (protobuf, JSON, protobuf+gzip, JSON+gzip), plus one raw OTLP/JSON
// request for the value types the JS API cannot produce (bytes, kvlist, empty AnyValue).
//
// What the SDK recorded is captured by an in-memory exporter attached to every provider as a
// second processor, and written to the expected-file for check.mjs to compare with what clew
// answers. Any export that does not report success fails this script.
//
// usage: node send.mjs <receiver base url, e.g. http://127.0.0.1:4318> <expected.json>
import { randomBytes } from 'node:crypto';
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
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';

const [base, expectedPath] = process.argv.slice(2);
if (!base || !expectedPath) {
  console.error('usage: node send.mjs <receiver base url> <expected.json>');
  process.exit(2);
}
const url = `${base.replace(/\/$/, '')}/v1/traces`;

const SERVICES = ['gateway', 'checkout', 'payment', 'inventory'];
const TRACES_PER_FLAVOUR = 3;
const FLAVOURS = [
  { label: 'otlp-proto', make: () => new ProtoExporter({ url, timeoutMillis: 10000 }) },
  { label: 'otlp-json', make: () => new JsonExporter({ url, timeoutMillis: 10000 }) },
  {
    label: 'otlp-proto-gzip',
    make: () => new ProtoExporter({ url, compression: 'gzip', timeoutMillis: 10000 }),
  },
  {
    label: 'otlp-json-gzip',
    make: () => new JsonExporter({ url, compression: 'gzip', timeoutMillis: 10000 }),
  },
];

// ---- the workload: gateway -> checkout -> {payment, inventory}, checkout -> inventory (async) ----

// Every attribute type the JS API allows. bytes and kvlist values cannot be span attributes in
// the JS API (isAttributeValue rejects them), so the raw request below covers those.
const ALL_TYPES = {
  'str': 'héllo wörld ✓ "quoted" \\ back',
  'str.empty': '',
  'bool.true': true,
  'bool.false': false,
  'int': 42,
  'int.zero': 0,
  'int.negative': -7,
  'int.max_safe': 9007199254740991,
  'double': 3.14159,
  'double.negative': -0.5,
  'double.tiny': 1.5e-300,
  'str.array': ['a', 'b c', ''],
  'bool.array': [true, false, true],
  'int.array': [1, -2, 3000000000],
  'double.array': [1.5, -2.25, 0.001],
};

function startAt(provider, name, kind, parentSpan, startNs, extra = {}) {
  const tracer = provider.getTracer('clew-interop', '1.2.3');
  const ctx = parentSpan ? trace.setSpan(context.active(), parentSpan) : context.active();
  return tracer.startSpan(name, { kind, startTime: nsToHr(startNs), ...extra }, ctx);
}

// One trace of 10 spans over 4 services with times at odd nanosecond offsets from t0, so any
// rounding to micro- or milliseconds shows. Returns the root span (the next trace links to it).
function sendTrace(p, t0, previousRoot) {
  const at = (off) => t0 + BigInt(off);
  const end = (span, off) => span.end(nsToHr(at(off)));

  const root = startAt(p.gateway, 'GET /api/checkout', SpanKind.SERVER, null, at(0), {
    attributes: ALL_TYPES,
  });
  root.addEvent('request.received', { 'http.request.body.size': 512, 'peer': '10.1.2.3' }, nsToHr(at(50001)));
  root.setStatus({ code: SpanStatusCode.OK });

  const gwClient = startAt(p.gateway, 'POST checkout', SpanKind.CLIENT, root, at(100003));
  gwClient.setAttributes({ 'http.request.method': 'POST', 'server.port': 8080 });
  const coServer = startAt(p.checkout, 'POST /checkout', SpanKind.SERVER, gwClient, at(200011));
  coServer.setAttribute('http.route', '/checkout');

  const validate = startAt(p.checkout, 'validate cart', SpanKind.INTERNAL, coServer, at(300017));
  validate.addEvent('cache.miss', { 'cache.key': 'cart:991', 'cache.ttl_s': 30, 'cache.load_ms': 1.25 }, nsToHr(at(400019)));
  validate.addEvent('no.attributes', undefined, nsToHr(at(500021)));
  end(validate, 1000019);

  const charge = startAt(p.checkout, 'charge card', SpanKind.CLIENT, coServer, at(1100023));
  const pay = startAt(p.payment, 'POST /charge', SpanKind.SERVER, charge, at(1200031));
  pay.setAttributes({ 'payment.amount': 129.95, 'payment.currency': 'EUR', 'payment.retry': false });
  pay.addEvent('exception', {
    'exception.type': 'CardDeclined',
    'exception.message': 'insufficient funds',
    'exception.escaped': false,
  }, nsToHr(at(2800033)));
  pay.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined: insufficient funds' });
  end(pay, 2900037);
  end(charge, 3000029);

  const reserve = startAt(p.checkout, 'reserve stock', SpanKind.CLIENT, coServer, at(3100041));
  const inv = startAt(p.inventory, 'POST /reserve', SpanKind.SERVER, reserve, at(3200047));
  inv.setAttribute('inventory.items', [101, 202, 303]);
  end(inv, 4900053);
  end(reserve, 5000043);

  const publish = startAt(p.checkout, 'publish order.created', SpanKind.PRODUCER, coServer, at(5100059));
  publish.setAttribute('messaging.destination.name', 'orders');
  end(publish, 5300061);

  const links = [{ context: publish.spanContext(), attributes: { 'messaging.operation': 'receive' } }];
  if (previousRoot) {
    links.push({
      context: previousRoot.spanContext(),
      attributes: { 'link.reason': 'retry-of', 'link.attempt': 2, 'link.weight': 0.75 },
    });
  }
  const consume = startAt(p.inventory, 'consume order.created', SpanKind.CONSUMER, publish, at(6000067), { links });
  end(consume, 8500071);

  end(coServer, 8700013);
  end(gwClient, 8800007);
  end(root, 9000001);
  return root;
}

// ---- the raw request: bytes, kvlist, an empty AnyValue, a mixed array ----

function rawRequest(t0) {
  const hex = (n) => randomBytes(n).toString('hex');
  const traceId = hex(16);
  const spanId = hex(8);
  const bytes = Buffer.from([0, 1, 2, 127, 128, 254, 255]).toString('base64');
  const kvlist = {
    kvlistValue: {
      values: [
        { key: 'inner.s', value: { stringValue: 'x' } },
        { key: 'inner.i', value: { intValue: '-5' } },
        { key: 'inner.list', value: { arrayValue: { values: [{ stringValue: 'y' }, { boolValue: true }] } } },
        { key: 'inner.nested', value: { kvlistValue: { values: [{ key: 'deep', value: { doubleValue: 0.25 } }] } } },
      ],
    },
  };
  const attributes = [
    { key: 'bytes', value: { bytesValue: bytes } },
    { key: 'kvlist', value: kvlist },
    { key: 'empty', value: {} },
    { key: 'mixed.array', value: { arrayValue: { values: [{ stringValue: 's' }, { intValue: '9' }, { bytesValue: bytes }, kvlist] } } },
  ];
  const span = {
    traceId,
    spanId,
    name: 'raw.json.span',
    kind: 1,
    startTimeUnixNano: (t0).toString(),
    endTimeUnixNano: (t0 + 1234567n).toString(),
    attributes,
    events: [{ timeUnixNano: (t0 + 1000n).toString(), name: 'raw.event', attributes: [{ key: 'payload', value: kvlist }] }],
    status: { code: 2, message: 'raw error' },
  };
  const body = {
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'raw-json' } }, { key: 'res.bytes', value: { bytesValue: bytes } }] },
      scopeSpans: [{ scope: { name: 'raw', version: '0.1' }, spans: [span] }],
    }],
  };
  const expected = {
    flavour: 'raw-json-fetch',
    traceId,
    spanId,
    parentSpanId: '',
    name: span.name,
    kind: 1,
    service: 'raw-json',
    resource: body.resourceSpans[0].resource.attributes,
    scope: { name: 'raw', version: '0.1' },
    startTimeUnixNano: span.startTimeUnixNano,
    endTimeUnixNano: span.endTimeUnixNano,
    attributes,
    events: span.events,
    links: [],
    status: { code: 2, message: 'raw error' },
  };
  return { body, expected };
}

// ---- main ----

const expected = { traces: {}, exports: [] };
const baseNs = BigInt(Date.now() - 120000) * 1000000n;
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
        'service.version': '2.0.1',
        'deployment.environment.name': 'interop',
        'host.cpu.count': 2,
      }),
      spanProcessors: [
        new BatchSpanProcessor(exporter, { scheduledDelayMillis: 100, maxExportBatchSize: 512 }),
        new SimpleSpanProcessor(memory),
      ],
    });
  }
  let previousRoot = null;
  for (let i = 0; i < TRACES_PER_FLAVOUR; i++) {
    // 10 ms apart, plus an odd nanosecond remainder
    const t0 = baseNs + BigInt(traceIndex++) * 10000000n + 123457n;
    previousRoot = sendTrace(providers, t0, previousRoot);
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
    const sent = exporter.results.reduce((n, r) => n + r.spans, 0);
    const failed = exporter.results.filter((r) => !r.ok);
    expected.exports.push({
      flavour: flavour.label,
      service,
      requests: exporter.results.length,
      spans: sent,
      failures: failed.map((r) => r.error),
    });
  }
}

const raw = rawRequest(baseNs + 500000000n + 7n);
let rawStatus = 0;
let rawBody = '';
try {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(raw.body),
  });
  rawStatus = res.status;
  rawBody = await res.text();
} catch (e) {
  rawBody = String(e);
}
expected.traces[raw.expected.traceId] = { flavour: 'raw-json-fetch', spans: [raw.expected] };
expected.exports.push({
  flavour: 'raw-json-fetch',
  service: 'raw-json',
  requests: 1,
  spans: 1,
  failures: rawStatus === 200 ? [] : [`HTTP ${rawStatus}: ${rawBody.slice(0, 300)}`],
});

writeFileSync(expectedPath, JSON.stringify(expected, null, 1));
const nspans = Object.values(expected.traces).reduce((n, t) => n + t.spans.length, 0);
console.log(`send: ${Object.keys(expected.traces).length} traces, ${nspans} spans recorded by the SDK`);
