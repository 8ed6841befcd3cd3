// tests/interop/propagation_js/check.mjs - extract every case of corpus.txt with the
// OpenTelemetry JS propagators and compare with libclew's results.
//
// Usage: node check.mjs CORPUS CLEW_RESULTS ALLOWED
//   CORPUS        tests/interop/propagation_js/corpus.txt (format described in its header)
//   CLEW_RESULTS  JSON lines written by test_propagation_corpus with CLEW_PROP_OUT
//   ALLOWED       "id<TAB>reason" lines: cases where the two may differ because the spec
//                 allows both behaviours (written by test_propagation_js.sh)
// Prints one line per case and "N passed, M failed"; exits 1 when anything failed.
import { readFileSync } from 'node:fs';
import { ROOT_CONTEXT, trace, propagation, defaultTextMapGetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator, W3CBaggagePropagator } from '@opentelemetry/core';
import { B3Propagator, B3InjectEncoding } from '@opentelemetry/propagator-b3';
import { JaegerPropagator } from '@opentelemetry/propagator-jaeger';

const [corpusPath, clewPath, allowedPath] = process.argv.slice(2);
if (!corpusPath || !clewPath || !allowedPath) {
  console.error('usage: node check.mjs CORPUS CLEW_RESULTS ALLOWED');
  process.exit(2);
}

const propagators = {
  tracecontext: new W3CTraceContextPropagator(),
  baggage: new W3CBaggagePropagator(),
  b3: new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER }),
  b3multi: new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER }),
  jaeger: new JaegerPropagator(),
};

function unescape(s) {
  return s.replace(/\\(t|\\)/g, (_, c) => (c === 't' ? '\t' : '\\'));
}

function parseCorpus(text) {
  const cases = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [id, prop, expect, ...headers] = line.split('\t');
    // HTTP stacks hand header names lowercased; a repeated header becomes an array.
    const carrier = {};
    for (const h of headers) {
      const i = h.indexOf(': ');
      const name = h.slice(0, i).toLowerCase();
      const value = unescape(h.slice(i + 2));
      if (name in carrier) {
        carrier[name] = [].concat(carrier[name], value);
      } else {
        carrier[name] = value;
      }
    }
    cases.push({ id, prop, expect, carrier });
  }
  return cases;
}

// Metadata is opaque in OpenTelemetry JS (kept as received); compare without OWS.
function normMeta(m) {
  if (!m) return '';
  return m
    .split(';')
    .map((p) => p.split('=').map((x) => x.trim()).join('='))
    .join(';');
}

function extractJs(c) {
  const p = propagators[c.prop];
  let ctx;
  try {
    ctx = p.extract(ROOT_CONTEXT, c.carrier, defaultTextMapGetter);
  } catch (e) {
    return { threw: String(e) };
  }
  if (c.prop === 'baggage') {
    const bag = propagation.getBaggage(ctx);
    const entries = bag ? bag.getAllEntries() : [];
    return {
      baggage: entries.map(([k, e]) => [k, e.value, normMeta(e.metadata && e.metadata.toString())]),
    };
  }
  const sc = trace.getSpanContext(ctx);
  if (!sc || !trace.isSpanContextValid(sc)) return { ctx: null };
  return {
    ctx: {
      traceId: sc.traceId.toLowerCase(),
      spanId: sc.spanId.toLowerCase(),
      flags: sc.traceFlags,
      traceState: sc.traceState ? sc.traceState.serialize() : '',
    },
  };
}

// What is compared: W3C keeps the whole flags byte and the tracestate; B3 and Jaeger
// carry only the sampled bit and no tracestate.
function comparable(prop, r) {
  if (r.threw) return { threw: true };
  if (prop === 'baggage') return { baggage: r.baggage };
  if (!r.ctx) return { ctx: null };
  const { traceId, spanId, flags, traceState } = r.ctx;
  if (prop === 'tracecontext') return { ctx: { traceId, spanId, flags, traceState } };
  return { ctx: { traceId, spanId, sampled: (flags & 1) === 1 } };
}

const cases = parseCorpus(readFileSync(corpusPath, 'utf8'));
const clew = new Map();
for (const line of readFileSync(clewPath, 'utf8').split('\n')) {
  if (line.trim() === '') continue;
  const r = JSON.parse(line);
  clew.set(r.id, r);
}
const allowed = new Map();
for (const line of readFileSync(allowedPath, 'utf8').split('\n')) {
  if (line.trim() === '' || line.startsWith('#')) continue;
  const i = line.indexOf('\t');
  allowed.set(line.slice(0, i), line.slice(i + 1));
}

let passed = 0;
let failed = 0;
for (const c of cases) {
  const mine = clew.get(c.id);
  if (!mine) {
    console.log(`FAIL ${c.id}: no libclew result`);
    failed++;
    continue;
  }
  const a = JSON.stringify(comparable(c.prop, mine));
  const b = JSON.stringify(comparable(c.prop, extractJs(c)));
  if (a === b) {
    if (allowed.has(c.id)) {
      console.log(`ok   ${c.id} (listed as an allowed difference, but both agree)`);
    } else {
      console.log(`ok   ${c.id}`);
    }
    passed++;
  } else if (allowed.has(c.id)) {
    console.log(`ok   ${c.id}: allowed difference: ${allowed.get(c.id)}`);
    console.log(`       clew: ${a}`);
    console.log(`       js:   ${b}`);
    passed++;
  } else {
    console.log(`FAIL ${c.id}`);
    console.log(`       clew: ${a}`);
    console.log(`       js:   ${b}`);
    failed++;
  }
}
for (const id of allowed.keys()) {
  if (!cases.some((c) => c.id === id)) {
    console.log(`FAIL ${id}: allowed difference names no corpus case`);
    failed++;
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
