// Sends spans with errors and exceptions to a LoopKit server through the real
// OpenTelemetry Node SDK and OTLP/HTTP exporter.
//   node send.js <json|proto> <endpoint> <producer_key> <service>
// Prints "sent <n>" after a successful flush; exits non-zero on export failure.
'use strict';
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { SpanStatusCode } = require('@opentelemetry/api');

const [protocol, url, key, service] = process.argv.slice(2);
const Exporter = protocol === 'proto'
  ? require('@opentelemetry/exporter-trace-otlp-proto').OTLPTraceExporter
  : require('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter;
const exporter = new Exporter({ url, headers: { authorization: `Bearer ${key}` } });

let failures = 0;
const original = exporter.export.bind(exporter);
exporter.export = (spans, done) => original(spans, (result) => {
  if (result.code !== 0) { failures++; console.error('export failed:', result.error && result.error.message); }
  done(result);
});

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': service, 'deployment.environment.name': 'test' }),
  spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: 50, scheduledDelayMillis: 100 })],
});
const tracer = provider.getTracer('ratchet-test');

function addToCart(userId) {
  const err = new TypeError(`Cannot read properties of undefined (reading 'price') for user ${userId}`);
  throw err;
}

let n = 0;
for (let i = 0; i < 12; i++) {
  const span = tracer.startSpan(`POST /cart/${1000 + i}`, { attributes: { 'http.request.method': 'POST', 'user.tier': i % 3 === 0 ? 'free' : 'pro' } });
  try { addToCart(i); } catch (e) {
    span.recordException(e);
    span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
  }
  span.end(); n++;
}
for (let i = 0; i < 5; i++) {
  const span = tracer.startSpan('GET /checkout', { attributes: { 'http.request.method': 'GET', 'http.response.status_code': 503 } });
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.end(); n++;
}
for (let i = 0; i < 20; i++) {
  const span = tracer.startSpan('GET /health');
  span.end(); n++;
}

provider.forceFlush().then(() => provider.shutdown()).then(() => {
  if (failures > 0) { console.error(`${failures} export(s) failed`); process.exit(1); }
  console.log(`sent ${n}`);
}).catch((e) => { console.error('flush failed:', e); process.exit(1); });
