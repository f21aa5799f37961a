"""An ASGI app each uvicorn worker imports: some breaker calls, and /metrics for all workers.

Every worker makes ten successful calls through the breaker "workers-shared" and owns a breaker
named after its pid, so one scrape shows whether every worker's figures were merged.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from resilience_kit import CircuitBreaker, prometheus

registry = CollectorRegistry()
prometheus.register(
    registry=registry, multiprocess_dir=os.environ["RK_METRICS_DIR"], snapshot_interval=0.2
)
shared = CircuitBreaker("workers-shared")
own = CircuitBreaker(f"worker-{os.getpid()}")
for _ in range(10):
    shared.call(lambda: None)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = generate_latest(registry)
    headers = [(b"content-type", b"text/plain"), (b"x-pid", str(os.getpid()).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
