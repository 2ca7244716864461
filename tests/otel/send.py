"""Sends spans with errors and exceptions to a LoopKit server through the real
OpenTelemetry Python SDK and OTLP/HTTP (protobuf) exporter.

    python send.py <endpoint> <producer_key> <service>

Prints "sent <n>" after a successful flush; exits non-zero on export failure.
"""
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode

url, key, service = sys.argv[1:4]


class CountingExporter(OTLPSpanExporter):
    failures = 0

    def export(self, spans):
        result = super().export(spans)
        if result != SpanExportResult.SUCCESS:
            CountingExporter.failures += 1
        return result


exporter = CountingExporter(endpoint=url, headers={"authorization": f"Bearer {key}"})
provider = TracerProvider(resource=Resource.create({"service.name": service}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("ratchet-test")


def load_invoice(invoice_id):
    raise KeyError(f"invoice {invoice_id} not found in '/var/data/invoices-{invoice_id}.db'")


n = 0
for i in range(9):
    with tracer.start_as_current_span(f"GET /invoices/{5000 + i}", record_exception=False) as span:
        try:
            load_invoice(5000 + i)
        except KeyError as e:
            span.record_exception(e)
            span.set_status(Status(StatusCode.ERROR, str(e)))
    n += 1
for i in range(4):
    with tracer.start_as_current_span("charge", attributes={"payment.provider": "acme"}) as span:
        span.set_status(Status(StatusCode.ERROR, f"card declined for order {700 + i}"))
    n += 1
for i in range(10):
    with tracer.start_as_current_span("GET /health"):
        pass
    n += 1

provider.force_flush()
provider.shutdown()
if CountingExporter.failures:
    print(f"{CountingExporter.failures} export(s) failed", file=sys.stderr)
    sys.exit(1)
print(f"sent {n}")
