// Runs a sample app's calls through the real OpenTelemetry Node SDK and
// OTLP/HTTP (protobuf) exporter, every span dated inside a pinned time range.
//   node app.js <endpoint> <producer_key> <repo root> <start unix ms> <end unix ms> <calls>
// The app is the workspace's own app/cart.js (required from <repo root>), so
// a patch ratchet merged there is what the next window's spans run. Each call
// is a span `POST /cart/{id}`; a call that throws records the exception. As
// many healthy `GET /health` spans follow. Prints "sent <n> (<failed> failed)".
'use strict';
const path = require('path');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { SpanStatusCode } = require('@opentelemetry/api');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');

const [url, key, root, startArg, endArg, callsArg] = process.argv.slice(2);
const [start, end, calls] = [Number(startArg), Number(endArg), Number(callsArg)];
const cart = require(path.join(root, 'app', 'cart.js'));

const exporter = new OTLPTraceExporter({ url, headers: { authorization: `Bearer ${key}` } });
let failures = 0;
const original = exporter.export.bind(exporter);
exporter.export = (spans, done) => original(spans, (result) => {
  if (result.code !== 0) { failures++; console.error('export failed:', result.error && result.error.message); }
  done(result);
});
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'shop' }),
  spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: 50, maxQueueSize: 4096, scheduledDelayMillis: 100 })],
});
const tracer = provider.getTracer('ratchet-e2e');

const step = Math.floor((end - start) / (2 * calls + 1));
let n = 0;
let failed = 0;
for (let i = 0; i < calls; i++) {
  const at = start + (2 * i + 1) * step;
  const span = tracer.startSpan(`POST /cart/${1000 + i}`, { startTime: at, attributes: { 'http.request.method': 'POST' } });
  try { cart.addToCart(`item-${i}`); } catch (e) {
    span.recordException(e);
    span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
    failed++;
  }
  span.end(at + 5); n++;
  const health = tracer.startSpan('GET /health', { startTime: at + Math.floor(step / 2) });
  health.end(at + Math.floor(step / 2) + 1); n++;
}

provider.forceFlush().then(() => provider.shutdown()).then(() => {
  if (failures > 0) { console.error(`${failures} export(s) failed`); process.exit(1); }
  console.log(`sent ${n} (${failed} failed)`);
}).catch((e) => { console.error('flush failed:', e); process.exit(1); });
