// Checks what clew answers for the traces send.mjs sent, through the Jaeger v1 API
// (GET /api/traces/{id}, wire.md §5.1) and the Jaeger v3 API (GET /api/v3/traces/{id}, OTLP/JSON
// under "result", wire.md §5.2), against what the OpenTelemetry JS SDK recorded.
//
// Prints one line per check ("ok - ..." or "FAIL - ..." followed by the differences) and a final
// "N passed, M failed"; exits 1 on any failure.
//
// usage: node check.mjs <query base url, e.g. http://127.0.0.1:16686> <expected.json>
import { readFileSync } from 'node:fs';

const [base, expectedPath] = process.argv.slice(2);
if (!base || !expectedPath) {
  console.error('usage: node check.mjs <query base url> <expected.json>');
  process.exit(2);
}
const query = base.replace(/\/$/, '');
const expected = JSON.parse(readFileSync(expectedPath, 'utf8'));

let passed = 0;
let failed = 0;
function report(name, problems) {
  if (problems.length === 0) {
    passed++;
    console.log(`ok - ${name}`);
    return;
  }
  failed++;
  console.log(`FAIL - ${name}`);
  for (const p of problems.slice(0, 40)) {
    console.log(`    ${p}`);
  }
  if (problems.length > 40) {
    console.log(`    ... and ${problems.length - 40} more`);
  }
}

const show = (v) => JSON.stringify(v);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// GETs `path` until `ready(status, json)` holds or `ms` pass: spans acknowledged by the receiver
// must become queryable within a second (design.md §4), so allow a few.
async function getJson(path, ready, ms = 5000) {
  const deadline = Date.now() + ms;
  let last = { status: 0, json: null, text: '' };
  for (;;) {
    try {
      const res = await fetch(query + path);
      const text = await res.text();
      let json = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
      last = { status: res.status, json, text };
      if (ready(res.status, json)) {
        return last;
      }
    } catch (e) {
      last = { status: 0, json: null, text: String(e) };
    }
    if (Date.now() > deadline) {
      return last;
    }
    await sleep(200);
  }
}

// ---- AnyValue comparison: the exact type and value, as OTLP/JSON prints them ----

function compareValue(path, want, got, out) {
  if (got === undefined || got === null) {
    got = {};
  }
  const wantKeys = Object.keys(want);
  const gotKeys = Object.keys(got);
  if (wantKeys.length === 0) {
    if (gotKeys.length !== 0) {
      out.push(`${path}: expected an empty AnyValue, got ${show(got)}`);
    }
    return;
  }
  const type = wantKeys[0];
  if (gotKeys.length !== 1 || gotKeys[0] !== type) {
    out.push(`${path}: expected type ${type} (${show(want)}), got ${show(got)}`);
    return;
  }
  const w = want[type];
  const g = got[type];
  switch (type) {
    case 'intValue':
      // 64-bit integers are decimal strings on output (wire.md §4.1)
      if (typeof g !== 'string' || !/^-?[0-9]+$/.test(g) || BigInt(g) !== BigInt(w)) {
        out.push(`${path}: expected intValue "${w}", got ${show(g)}`);
      }
      break;
    case 'doubleValue':
      if (typeof g !== 'number' || g !== w) {
        out.push(`${path}: expected doubleValue ${w}, got ${show(g)}`);
      }
      break;
    case 'stringValue':
    case 'boolValue':
      if (g !== w) {
        out.push(`${path}: expected ${type} ${show(w)}, got ${show(g)}`);
      }
      break;
    case 'bytesValue':
      if (typeof g !== 'string' || Buffer.from(g, 'base64').compare(Buffer.from(w, 'base64')) !== 0) {
        out.push(`${path}: expected bytesValue ${w}, got ${show(g)}`);
      }
      break;
    case 'arrayValue': {
      const wv = (w && w.values) || [];
      const gv = (g && g.values) || [];
      if (wv.length !== gv.length) {
        out.push(`${path}: expected ${wv.length} array values, got ${gv.length}: ${show(g)}`);
        return;
      }
      wv.forEach((item, i) => compareValue(`${path}[${i}]`, item, gv[i], out));
      break;
    }
    case 'kvlistValue':
      compareAttrs(path, (w && w.values) || [], (g && g.values) || [], out);
      break;
    default:
      out.push(`${path}: unknown expected type ${type}`);
  }
}

// Attribute lists compare as sets keyed by name (keys are unique in OTLP): same keys, same
// values, nothing missing and nothing extra.
function compareAttrs(path, want, got, out) {
  if (!Array.isArray(got)) {
    if (want.length > 0 || (got !== undefined && got !== null)) {
      out.push(`${path}: expected an attribute list, got ${show(got)}`);
    }
    return;
  }
  const gotByKey = new Map();
  for (const kv of got) {
    if (gotByKey.has(kv.key)) {
      out.push(`${path}: key ${show(kv.key)} appears twice`);
    }
    gotByKey.set(kv.key, kv.value);
  }
  for (const kv of want) {
    if (!gotByKey.has(kv.key)) {
      out.push(`${path}: attribute ${show(kv.key)} missing (expected ${show(kv.value)})`);
      continue;
    }
    compareValue(`${path}.${kv.key}`, kv.value, gotByKey.get(kv.key), out);
    gotByKey.delete(kv.key);
  }
  for (const [k, v] of gotByKey) {
    out.push(`${path}: unexpected attribute ${show(k)} = ${show(v)}`);
  }
}

const eqHex = (a, b) => typeof b === 'string' && a.toLowerCase() === b.toLowerCase();
const usOf = (ns) => Number(BigInt(ns) / 1000n);

// ---- the export results themselves ----

for (const e of expected.exports) {
  const problems = [];
  if (e.failures.length > 0) {
    problems.push(`export failed: ${e.failures.join('; ')}`);
  }
  if (e.spans === 0) {
    problems.push('nothing was exported');
  }
  report(`export ${e.flavour} ${e.service}: ${e.spans} spans in ${e.requests} requests acknowledged`, problems);
}

// ---- Jaeger v1 ----

const V1_KIND = { 2: 'server', 3: 'client', 4: 'producer', 5: 'consumer' };

async function checkV1(traceId, want) {
  const problems = [];
  const r = await getJson(`/api/traces/${traceId}`, (status, json) =>
    status === 200 && json && Array.isArray(json.data) && json.data[0] &&
    Array.isArray(json.data[0].spans) && json.data[0].spans.length >= want.spans.length);
  if (r.status !== 200 || !r.json || !Array.isArray(r.json.data) || r.json.data.length !== 1) {
    problems.push(`GET /api/traces/${traceId}: HTTP ${r.status}, body ${r.text.slice(0, 300)}`);
    return problems;
  }
  const t = r.json.data[0];
  if (!eqHex(traceId, t.traceID)) {
    problems.push(`traceID: expected ${traceId}, got ${show(t.traceID)}`);
  }
  if (t.spans.length !== want.spans.length) {
    problems.push(`span count: expected ${want.spans.length}, got ${t.spans.length}`);
  }
  const processes = t.processes || {};
  const byId = new Map(t.spans.map((s) => [String(s.spanID).toLowerCase(), s]));
  for (const w of want.spans) {
    const s = byId.get(w.spanId);
    const at = `span ${w.spanId} (${w.service}/${w.name})`;
    if (!s) {
      problems.push(`${at}: missing`);
      continue;
    }
    if (s.operationName !== w.name) {
      problems.push(`${at}: operationName ${show(s.operationName)}`);
    }
    const proc = s.process || processes[s.processID];
    if (!proc || proc.serviceName !== w.service) {
      problems.push(`${at}: process serviceName expected ${w.service}, got ${show(proc)}`);
    }
    if (s.startTime !== usOf(w.startTimeUnixNano)) {
      problems.push(`${at}: startTime expected ${usOf(w.startTimeUnixNano)} µs, got ${s.startTime}`);
    }
    const dur = Number(BigInt(w.endTimeUnixNano) - BigInt(w.startTimeUnixNano)) / 1000;
    if (typeof s.duration !== 'number' || Math.abs(s.duration - dur) > 1) {
      problems.push(`${at}: duration expected ${dur} µs (±1), got ${s.duration}`);
    }
    const refs = Array.isArray(s.references) ? s.references : [];
    const childOf = refs.filter((x) => x.refType === 'CHILD_OF');
    if (w.parentSpanId) {
      if (childOf.length === 0 || !eqHex(w.parentSpanId, childOf[0].spanID) || !eqHex(traceId, childOf[0].traceID)) {
        problems.push(`${at}: first CHILD_OF reference should be ${w.parentSpanId}, references ${show(refs)}`);
      }
    } else if (childOf.length !== 0) {
      problems.push(`${at}: root span has CHILD_OF references ${show(childOf)}`);
    }
    for (const l of w.links) {
      if (!refs.some((x) => eqHex(l.spanId, x.spanID) && eqHex(l.traceId, x.traceID))) {
        problems.push(`${at}: link to ${l.traceId}/${l.spanId} not among references ${show(refs)}`);
      }
    }
    const tags = Array.isArray(s.tags) ? s.tags : [];
    const errorTag = tags.find((x) => x.key === 'error');
    if (w.status.code === 2) {
      if (!errorTag || errorTag.value !== true || errorTag.type !== 'bool') {
        problems.push(`${at}: error span lacks tag error=true (bool), tags ${show(tags)}`);
      }
    } else if (errorTag && errorTag.value === true) {
      problems.push(`${at}: span without ERROR status has tag error=true`);
    }
    if (V1_KIND[w.kind]) {
      const kindTag = tags.find((x) => x.key === 'span.kind');
      if (!kindTag || kindTag.value !== V1_KIND[w.kind]) {
        problems.push(`${at}: span.kind tag expected ${V1_KIND[w.kind]}, got ${show(kindTag)}`);
      }
    }
    const logs = Array.isArray(s.logs) ? s.logs : [];
    if (logs.length !== w.events.length) {
      problems.push(`${at}: expected ${w.events.length} logs, got ${show(logs)}`);
    } else {
      for (const e of w.events) {
        const ts = usOf(e.timeUnixNano);
        const log = logs.find((x) => x.timestamp === ts &&
          (x.fields || []).some((f) => f.key === 'event' && f.value === e.name));
        if (!log) {
          problems.push(`${at}: no log at ${ts} µs with field event=${e.name}; logs ${show(logs)}`);
        }
      }
    }
    if (w.attributes.some((a) => a.value.bytesValue !== undefined)) {
      const b = w.attributes.find((a) => a.value.bytesValue !== undefined);
      const tag = tags.find((x) => x.key === b.key);
      if (!tag || tag.type !== 'binary' || tag.value !== b.value.bytesValue) {
        problems.push(`${at}: bytes attribute ${b.key} should be a binary tag ${b.value.bytesValue}, got ${show(tag)}`);
      }
    }
  }
  return problems;
}

// ---- Jaeger v3 (OTLP/JSON) ----

async function checkV3(traceId, want) {
  const problems = [];
  const count = (json) => {
    let n = 0;
    for (const rs of (json && json.result && json.result.resourceSpans) || []) {
      for (const ss of rs.scopeSpans || []) {
        n += (ss.spans || []).length;
      }
    }
    return n;
  };
  const r = await getJson(`/api/v3/traces/${traceId}`, (status, json) =>
    status === 200 && count(json) >= want.spans.length);
  if (r.status !== 200 || !r.json || !r.json.result) {
    problems.push(`GET /api/v3/traces/${traceId}: HTTP ${r.status}, body ${r.text.slice(0, 300)}`);
    return problems;
  }
  const got = new Map();
  for (const rs of r.json.result.resourceSpans || []) {
    for (const ss of rs.scopeSpans || []) {
      for (const s of ss.spans || []) {
        got.set(String(s.spanId).toLowerCase(), { s, resource: rs.resource || {}, scope: ss.scope || {} });
      }
    }
  }
  if (got.size !== want.spans.length) {
    problems.push(`span count: expected ${want.spans.length}, got ${got.size}`);
  }
  for (const w of want.spans) {
    const at = `span ${w.spanId} (${w.service}/${w.name})`;
    const g = got.get(w.spanId);
    if (!g) {
      problems.push(`${at}: missing`);
      continue;
    }
    const { s, resource, scope } = g;
    if (!eqHex(w.traceId, s.traceId)) {
      problems.push(`${at}: traceId ${show(s.traceId)}`);
    }
    if (w.parentSpanId ? !eqHex(w.parentSpanId, s.parentSpanId) : (s.parentSpanId || '') !== '') {
      problems.push(`${at}: parentSpanId expected ${show(w.parentSpanId)}, got ${show(s.parentSpanId)}`);
    }
    if (s.name !== w.name) {
      problems.push(`${at}: name ${show(s.name)}`);
    }
    if (s.kind !== w.kind) {
      problems.push(`${at}: kind expected ${w.kind}, got ${show(s.kind)}`);
    }
    for (const f of ['startTimeUnixNano', 'endTimeUnixNano']) {
      if (String(s[f]) !== w[f]) {
        problems.push(`${at}: ${f} expected ${w[f]}, got ${show(s[f])}`);
      }
    }
    compareAttrs(`${at} attributes`, w.attributes, s.attributes || [], problems);
    compareAttrs(`${at} resource`, w.resource, resource.attributes || [], problems);
    if (scope.name !== w.scope.name || (scope.version || '') !== (w.scope.version || '')) {
      problems.push(`${at}: scope expected ${show(w.scope)}, got ${show(scope)}`);
    }
    const events = s.events || [];
    if (events.length !== w.events.length) {
      problems.push(`${at}: expected ${w.events.length} events, got ${events.length}`);
    } else {
      w.events.forEach((e, i) => {
        const ge = events[i];
        if (ge.name !== e.name || String(ge.timeUnixNano) !== e.timeUnixNano) {
          problems.push(`${at}: event ${i} expected ${e.name}@${e.timeUnixNano}, got ${ge.name}@${ge.timeUnixNano}`);
        }
        compareAttrs(`${at} event ${e.name}`, e.attributes, ge.attributes || [], problems);
      });
    }
    const links = s.links || [];
    if (links.length !== w.links.length) {
      problems.push(`${at}: expected ${w.links.length} links, got ${links.length}`);
    } else {
      w.links.forEach((l, i) => {
        const gl = links[i];
        if (!eqHex(l.traceId, gl.traceId) || !eqHex(l.spanId, gl.spanId)) {
          problems.push(`${at}: link ${i} expected ${l.traceId}/${l.spanId}, got ${gl.traceId}/${gl.spanId}`);
        }
        compareAttrs(`${at} link ${i}`, l.attributes, gl.attributes || [], problems);
      });
    }
    const status = s.status || {};
    if ((status.code || 0) !== w.status.code || (status.message || '') !== w.status.message) {
      problems.push(`${at}: status expected ${show(w.status)}, got ${show(status)}`);
    }
  }
  return problems;
}

for (const [traceId, want] of Object.entries(expected.traces)) {
  const services = [...new Set(want.spans.map((s) => s.service))].join(',');
  const what = `${want.flavour} trace ${traceId} (${want.spans.length} spans; ${services})`;
  report(`v1 ${what}: spans, CHILD_OF parents, links, logs, error tag, span.kind, services, µs times`,
    await checkV1(traceId, want));
  report(`v3 ${what}: ids, ns times, kinds, attributes, resources, scope, events, links, status`,
    await checkV3(traceId, want));
}

// An unknown id must be a 404, not an empty 200 or a crash.
{
  const r = await getJson('/api/traces/0123456789abcdef0123456789abcdef', () => true, 0);
  report('v1 unknown trace id answers 404', r.status === 404 ? [] : [`HTTP ${r.status}: ${r.text.slice(0, 200)}`]);
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
