// Sends one RPC with zipkin-js the way instrumented services do: a client span in
// "js-frontend", the server half in "js-backend" joined to the client's span id
// (Zipkin's shared-span model, reported with "shared": true) and a local span inside
// the server. zipkin-transport-http posts them as JSON v2 to clew serve's
// /api/v2/spans. Writes what a reader must find to the file named by argv[3].
//
// usage: node send.mjs ZIPKIN_BASE_URL EXPECTED_JSON_FILE
import fs from 'node:fs';
import fetch from 'node-fetch';
import zipkin from 'zipkin';
import transport from 'zipkin-transport-http';

const { Tracer, BatchRecorder, ExplicitContext, jsonEncoder, Annotation, TraceId, option } = zipkin;
const { HttpLogger } = transport;
const [base, outFile] = process.argv.slice(2);

const logger = new HttpLogger({
    endpoint: `${base}/api/v2/spans`,
    jsonEncoder: jsonEncoder.JSON_V2,
    httpInterval: 100,
    fetchImplementation: fetch,
});
let posted = 0;
const errors = [];
logger.on('success', (res) => {
    if (res.status !== 202) {
        errors.push(`status ${res.status}`);
    }
    posted++;
});
logger.on('error', (e) => errors.push(String(e)));
const recorder = new BatchRecorder({ logger, timeout: 60 * 1000 });

const frontend = new Tracer({ ctxImpl: new ExplicitContext(), recorder, localServiceName: 'js-frontend',
    traceId128Bit: true });
const backend = new Tracer({ ctxImpl: new ExplicitContext(), recorder, localServiceName: 'js-backend',
    supportsJoin: true });

const expected = [];
for (let i = 0; i < 3; i++) {
    const clientId = frontend.createRootId();
    let localId;
    frontend.letId(clientId, () => {
        frontend.recordServiceName('js-frontend');
        frontend.recordRpc('GET /items');
        frontend.recordBinary('http.path', `/items/${i}`);
        frontend.recordAnnotation(new Annotation.ClientSend());
        frontend.recordAnnotation(new Annotation.ServerAddr({ serviceName: 'js-backend' }));
    });
    // what the B3 headers carry to the server, which joins the client's span
    const incoming = new TraceId({
        traceId: clientId.traceId,
        spanId: clientId.spanId,
        parentId: option.None,
        sampled: new option.Some(true),
    });
    const serverId = backend.join(incoming);
    backend.letId(serverId, () => {
        backend.recordServiceName('js-backend');
        backend.recordRpc('GET /items');
        backend.recordAnnotation(new Annotation.ServerRecv());
        backend.recordBinary('http.status_code', '200');
        backend.local('db-query', () => {
            localId = backend.id.spanId;
            backend.recordBinary('db.rows', String(10 + i));
        });
        backend.recordAnnotation(new Annotation.ServerSend());
    });
    frontend.letId(clientId, () => frontend.recordAnnotation(new Annotation.ClientRecv()));
    expected.push({ traceId: clientId.traceId, clientId: clientId.spanId, localId, path: `/items/${i}`,
        rows: String(10 + i) });
}

// the logger posts every 100 ms; wait for the answers
const deadline = Date.now() + 15000;
while (posted === 0 && errors.length === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
}
await new Promise((r) => setTimeout(r, 300));
if (errors.length > 0 || posted === 0) {
    console.error('zipkin-transport-http failed:', errors.length ? errors.join('; ') : 'no answer');
    process.exit(1);
}
fs.writeFileSync(outFile, JSON.stringify(expected));
console.log(`zipkin-js: ${expected.length} traces posted in ${posted} request(s), all answered 202`);
