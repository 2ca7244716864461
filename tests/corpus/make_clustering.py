#!/usr/bin/env python3
"""Writes tests/corpus/clustering.jsonl: failing (and healthy) spans as the
OpenTelemetry SDKs of Python, Node, .NET and Go send them, with HTTP client
spans, each labelled with the pain it belongs to (ground truth), or null when
it must not be a pain of its own (healthy, or failed because a child did).

Deterministic (seeded); re-run to regenerate:  python3 tests/corpus/make_clustering.py
"""
import json
import random
import string

rnd = random.Random(20261130)
out = []
trace_no = [0]
span_no = [0]


def new_trace():
    trace_no[0] += 1
    return trace_no[0]


def new_span():
    span_no[0] += 1
    return span_no[0]


def rid(n, alphabet=string.ascii_letters):
    return "".join(rnd.choice(alphabet) for _ in range(n))


def span(label, service, name, kind=2, status=2, message="", attrs=None, exc=None, trace=None, parent=None):
    s = {
        "label": label, "service": service, "name": name, "kind": kind, "status_code": status,
        "status_message": message, "trace": trace or new_trace(), "span": new_span(), "parent": parent,
        "attrs": attrs or {}, "exception": exc,
    }
    out.append(s)
    return s


# Python: KeyError in the cart (frames without line numbers), two call sites.
for i in range(30):
    line = rnd.randint(10, 90)
    key = rnd.choice(["sku", "qty", "price", "currency"])
    stack = (
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3.11/site-packages/flask/app.py", line 1484, in full_dispatch_request\n'
        f'  File "/srv/shop/cart/views.py", line {line}, in add_item\n'
        f'  File "/srv/shop/cart/model.py", line {line + 7}, in price_of\n'
        f"KeyError: '{key}'"
    )
    span("py-keyerror-price", "cart-py", "POST /cart/items", message=f"'{key}'",
         exc={"type": "KeyError", "message": f"'{key}'", "stack": stack},
         attrs={"http.route": "/cart/items", "http.request.method": "POST", "http.response.status_code": 500})
for i in range(12):
    stack = (
        "Traceback (most recent call last):\n"
        f'  File "/srv/shop/cart/views.py", line {rnd.randint(100, 140)}, in remove_item\n'
        f"KeyError: 'line_{rnd.randint(1, 999)}'"
    )
    span("py-keyerror-remove", "cart-py", "DELETE /cart/items/{id}",
         exc={"type": "KeyError", "message": "'x'", "stack": stack},
         attrs={"http.route": "/cart/items/{id}", "http.request.method": "DELETE"})

# Node: TypeError in checkout, columns and lines moving between deploys.
for i in range(25):
    l, c = rnd.randint(10, 200), rnd.randint(1, 40)
    root = rnd.choice(["/srv/app", "/home/ci/build", "/opt/checkout"])
    stack = (
        "TypeError: Cannot read properties of undefined (reading 'total')\n"
        f"    at computeTotals ({root}/src/checkout/totals.js:{l}:{c})\n"
        f"    at Layer.handle ({root}/node_modules/express/lib/router/layer.js:95:5)\n"
        f"    at {root}/src/checkout/routes.js:{l + 3}:{c}\n"
        "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"
    )
    span("node-typeerror-totals", "checkout-node", "POST /checkout",
         exc={"type": "TypeError", "message": "Cannot read properties of undefined (reading 'total')", "stack": stack},
         attrs={"http.route": "/checkout", "http.request.method": "POST"})

# .NET: the same failure with line numbers and build paths that differ.
for i in range(25):
    line = rnd.choice([42, 43, 57, 61])
    root = rnd.choice(["/src", "C:\\build\\agent\\_work\\1\\s", "/home/runner/work/shop"])
    sep = "\\" if root.startswith("C:") else "/"
    stack = (
        "System.InvalidOperationException: Sequence contains no elements\n"
        "   at System.Linq.ThrowHelper.ThrowNoElementsException()\n"
        "   at System.Linq.Enumerable.First[TSource](IEnumerable`1 source)\n"
        f"   at Shop.Orders.OrderService.<PlaceAsync>d__7.MoveNext() in {root}{sep}Shop.Orders{sep}OrderService.cs:line {line}\n"
        "--- End of stack trace from previous location ---\n"
        f"   at Shop.Api.Controllers.OrdersController.Post(OrderDto dto) in {root}{sep}Shop.Api{sep}Controllers{sep}OrdersController.cs:line {line - 20}\n"
        "   at Microsoft.AspNetCore.Mvc.Infrastructure.ActionMethodExecutor.TaskOfIActionResultExecutor.Execute(ActionContext context)"
    )
    span("dotnet-noelements-place", "orders-dotnet", "POST api/orders",
         exc={"type": "System.InvalidOperationException", "message": "Sequence contains no elements", "stack": stack},
         attrs={"http.route": "api/orders", "http.request.method": "POST"})
for i in range(10):
    stack = (
        "System.NullReferenceException: Object reference not set to an instance of an object.\n"
        f"   at Shop.Orders.OrderService.Cancel(Int32 id) in /src/Shop.Orders/OrderService.cs:line {rnd.randint(80, 99)}\n"
        f"   at Shop.Api.Controllers.OrdersController.Delete(Int32 id) in /src/Shop.Api/Controllers/OrdersController.cs:line {rnd.randint(30, 40)}"
    )
    span("dotnet-nullref-cancel", "orders-dotnet", "DELETE api/orders/{id}",
         exc={"type": "System.NullReferenceException", "message": "Object reference not set to an instance of an object.", "stack": stack},
         attrs={"http.route": "api/orders/{id}", "http.request.method": "DELETE"})

# Go: a panic whose addresses and lines change, and an error status with ids by shape.
for i in range(20):
    stack = (
        "panic: runtime error: index out of range [3] with length 3\n\n"
        f"goroutine {rnd.randint(1, 999)} [running]:\n"
        f"main.(*Inventory).Reserve(0xc{rnd.randint(10**8, 10**9):09x}, {{0x{rnd.randint(1, 99):x}, 0x2}})\n"
        f"\t/app/inventory.go:{rnd.choice([88, 91])} +0x{rnd.randint(16, 255):x}\n"
        f"main.reserveHandler(0xc{rnd.randint(10**8, 10**9):09x})\n"
        f"\t/app/server.go:{rnd.choice([40, 41])} +0x5a\n"
        "net/http.HandlerFunc.ServeHTTP(0x0?, {0x7f, 0xc0})\n"
        "\t/usr/local/go/src/net/http/server.go:2136 +0x29"
    )
    span("go-panic-reserve", "inventory-go", "POST /reserve",
         exc={"type": "runtime.Error", "message": "runtime error: index out of range [3] with length 3", "stack": stack},
         attrs={"http.route": "/reserve", "http.request.method": "POST"})
for i in range(20):
    oid = "ord_" + rid(10)
    span("go-order-missing", "inventory-go", "GET /orders/{id}",
         message=f"order {oid} not found in shard {rnd.choice(['eu', 'us'])}-{rnd.randint(1, 9)}",
         attrs={"http.route": "/orders/{id}", "http.request.method": "GET"})
for i in range(15):
    span("go-lock-timeout", "inventory-go", "reserve stock",
         message=f"lock timeout after {rnd.randint(100, 900)}ms on sku {rid(12)}")

# HTTP clients named only by their method: two downstream services' 503s
# are two pains; the server span that failed because of its child is not a
# pain of its own.
for i in range(20):
    t = new_trace()
    parent = span(None, "checkout-py", "POST /checkout", message="upstream failed", trace=t,
                  attrs={"http.route": "/checkout", "http.request.method": "POST", "http.response.status_code": 502})
    span("client-payments-503", "checkout-py", "POST", kind=3, status=2, trace=t, parent=parent["span"],
         attrs={"http.request.method": "POST", "server.address": "payments.internal", "url.template": "/v1/charges",
                "http.response.status_code": 503, "url.full": f"https://payments.internal/v1/charges?idem={rid(16)}"})
for i in range(20):
    t = new_trace()
    parent = span(None, "checkout-py", "POST /checkout", trace=t,
                  exc={"type": "requests.exceptions.HTTPError", "message": f"503 Server Error for url: https://inventory.internal/v2/stock/{rnd.randint(1000, 9999)}",
                       "stack": 'Traceback (most recent call last):\n  File "/srv/checkout/app.py", line 77, in checkout\nrequests.exceptions.HTTPError: 503'},
                  attrs={"http.route": "/checkout", "http.request.method": "POST"})
    span("client-inventory-503", "checkout-py", "GET", kind=3, status=2, trace=t, parent=parent["span"],
         attrs={"http.request.method": "GET", "server.address": "inventory.internal", "url.template": "/v2/stock/{sku}",
                "http.response.status_code": 503})
for i in range(12):
    span("client-node-search-504", "web-node", "GET", kind=3, status=2,
         attrs={"http.method": "GET", "net.peer.name": "search.internal", "http.status_code": 504,
                "http.url": f"http://search.internal/q?term={rid(6)}"})

# Messages that must stay apart.
for i in range(10):
    span("payment-declined", "billing-py", "charge card", message=f"payment declined for customer cus_{rid(14)}")
for i in range(10):
    span("payment-timeout", "billing-py", "charge card", message=f"payment timeout for customer cus_{rid(14)} after {rnd.randint(2, 30)}s")

# Healthy spans.
for i in range(60):
    span(None, rnd.choice(["cart-py", "checkout-node", "orders-dotnet", "inventory-go"]), "GET /health", status=0)

rnd.shuffle(out)
with open(__file__.rsplit("/", 1)[0] + "/clustering.jsonl", "w") as f:
    for s in out:
        f.write(json.dumps(s, sort_keys=True) + "\n")
print(f"wrote {len(out)} spans, {len({s['label'] for s in out if s['label']})} pains")
