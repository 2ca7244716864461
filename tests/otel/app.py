"""Runs a sample app's calls through the real OpenTelemetry Python SDK and
OTLP/HTTP (protobuf) exporter, every span dated inside a pinned time range
(the test's clocks are pinned, so the SDK's own clock is not used).

    python app.py <endpoint> <producer_key> <repo root> <start unix ns> <end unix ns> <calls>

The app is the workspace's own `app/billing.py` (imported from <repo root>),
so a patch ratchet merged there is what the next window's spans run.
Each call is a span `GET /invoices/{id}`; a call that raises records the
exception. As many healthy `GET /health` spans follow. Prints "sent <n>
(<failed> failed)" after a successful flush; exits non-zero on export failure.
"""
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode

url, key, root, start, end, calls = sys.argv[1:7]
start, end, calls = int(start), int(end), int(calls)
sys.path.insert(0, f"{root}/app")
import billing  # noqa: E402  (the workspace's app)


class CountingExporter(OTLPSpanExporter):
    failures = 0

    def export(self, spans):
        result = super().export(spans)
        if result != SpanExportResult.SUCCESS:
            CountingExporter.failures += 1
        return result


exporter = CountingExporter(endpoint=url, headers={"authorization": f"Bearer {key}"})
provider = TracerProvider(resource=Resource.create({"service.name": "billing"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("ratchet-e2e")

step = (end - start) // (2 * calls + 1)
n = failed = 0
for i in range(calls):
    at = start + (2 * i + 1) * step
    span = tracer.start_span(f"GET /invoices/{5000 + i}", start_time=at, record_exception=False)
    try:
        billing.load_invoice(5000 + i)
    except Exception as e:  # the app's failure, as an instrumented handler records it
        span.record_exception(e)
        span.set_status(Status(StatusCode.ERROR, str(e)))
        failed += 1
    span.end(end_time=at + 5_000_000)
    n += 1
    health = tracer.start_span("GET /health", start_time=at + step // 2)
    health.end(end_time=at + step // 2 + 1_000_000)
    n += 1

provider.force_flush()
provider.shutdown()
if CountingExporter.failures:
    print(f"{CountingExporter.failures} export(s) failed", file=sys.stderr)
    sys.exit(1)
print(f"sent {n} ({failed} failed)")
