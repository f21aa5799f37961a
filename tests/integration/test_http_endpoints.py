"""The endpoints over real HTTP: uvicorn on a free port, real Redis and PostgreSQL checks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from resilience_kit import CircuitBreaker
from resilience_kit import prometheus as rk_prometheus
from resilience_kit.health import HealthChecker, check_breaker, check_redis, check_sqlalchemy
from resilience_kit.integrations.asgi import ResilienceApp

TOKEN = "uvicorn-admin-token-0123456789"  # noqa: S105 - a test token


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(app: Any) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def services(
    redis_url: str, database_url: str, breakers: object
) -> Iterator[tuple[HealthChecker, CircuitBreaker]]:
    import redis
    import sqlalchemy as sa
    from prometheus_client import CollectorRegistry

    from resilience_kit.sql import install_query_monitor

    engine = sa.create_engine(database_url)
    monitor = install_query_monitor(engine)
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    breaker = CircuitBreaker("uvicorn-upstream")
    checker = HealthChecker(
        {
            "postgres": check_sqlalchemy(engine),
            "redis": check_redis(client),
            "upstream": check_breaker(breaker),
        },
        cache_ttl=0,
    )
    registry = CollectorRegistry()
    collector = rk_prometheus.register(registry=registry)
    checker.registry = registry  # type: ignore[attr-defined]
    checker.db_metrics = monitor.to_dict  # type: ignore[attr-defined]
    yield checker, breaker
    monitor.remove()
    rk_prometheus.unregister(collector, registry=registry)
    breaker.unregister()
    client.close()
    engine.dispose()


def build_fastapi(checker: HealthChecker) -> Any:
    from fastapi import FastAPI

    from resilience_kit.integrations.fastapi import (
        admin_router,
        health_router,
        install_exception_handlers,
        metrics_router,
    )

    app = FastAPI()
    app.include_router(health_router(checker))
    app.include_router(metrics_router(registry=checker.registry))  # type: ignore[attr-defined]
    app.include_router(admin_router(token=TOKEN, db_metrics=checker.db_metrics))  # type: ignore[attr-defined]
    install_exception_handlers(app)
    return app


def build_asgi(checker: HealthChecker) -> Any:
    registry = checker.registry  # type: ignore[attr-defined]
    return ResilienceApp(
        checker=checker,
        registry=registry,
        admin=True,
        token=TOKEN,
        db_metrics=checker.db_metrics,  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("build", [build_fastapi, build_asgi], ids=["fastapi", "asgi"])
def test_endpoints_over_http(services: tuple[HealthChecker, CircuitBreaker], build: Any) -> None:
    checker, breaker = services
    for base in serve(build(checker)):
        with httpx.Client(base_url=base, timeout=10) as http:
            health = http.get("/health")
            assert health.status_code == 200, health.text
            checks = health.json()["checks"]
            assert {name: c["status"] for name, c in checks.items()} == {
                "postgres": "healthy",
                "redis": "healthy",
                "upstream": "healthy",
            }
            assert http.get("/health/live").status_code == 200
            assert http.get("/admin/breakers").status_code == 401
            wrong = http.get("/admin/breakers", headers={"Authorization": "Bearer " + "x" * 30})
            assert wrong.status_code == 401
            auth = {"Authorization": f"Bearer {TOKEN}"}
            listing = http.get("/admin/breakers", headers=auth).json()["breakers"]
            assert listing["uvicorn-upstream"]["state"] == "CLOSED"
            forced = http.post("/admin/breakers/uvicorn-upstream/force_open", headers=auth)
            assert forced.json()["state"] == "FORCED_OPEN"
            assert str(breaker.state) == "FORCED_OPEN"
            assert http.get("/health/ready").status_code == 503
            metrics = http.get("/metrics")
            assert metrics.status_code == 200
            line = (
                'resilience_kit_breaker_state{breaker="uvicorn-upstream",state="FORCED_OPEN"} 1.0'
            )
            assert line in metrics.text
            assert (
                'resilience_kit_health_check_status{check="upstream",status="unhealthy"} 1.0'
                in (metrics.text)
            )
            database = http.get("/admin/db_metrics", headers=auth).json()["db_metrics"]
            assert database["total_queries"] >= 1, "the postgres health check's SELECT 1"
            assert http.get("/admin/db_metrics").status_code == 401
            assert "resilience_kit_db_queries_total{engine=" in metrics.text
            assert http.post("/admin/breakers/uvicorn-upstream/reset", headers=auth).is_success
            assert http.get("/health").status_code == 200


def test_a_silent_dependency_never_holds_the_probe_past_its_timeout(
    redis_url: str,
) -> None:
    import redis

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    silent = redis.Redis(host="127.0.0.1", port=listener.getsockname()[1])
    healthy = redis.Redis.from_url(redis_url, socket_timeout=2)
    checker = HealthChecker(
        {"silent": check_redis(silent), "redis": check_redis(healthy)},
        timeout=0.5,
        critical=["redis"],
        cache_ttl=0,
    )
    try:
        for base in serve(ResilienceApp(checker=checker, metrics=False)):
            started = time.perf_counter()
            response = httpx.get(f"{base}/health", timeout=10)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, "the silent check is not critical"
            body = response.json()
            assert body["status"] == "degraded"
            assert body["checks"]["silent"]["message"] == "timed out after 0.5s"
            assert body["checks"]["redis"]["status"] == "healthy"
            assert body["checks"]["redis"]["response_time_ms"] < 400
            assert 0.5 <= elapsed < 2.0
            # A liveness probe never waits for any dependency.
            started = time.perf_counter()
            assert httpx.get(f"{base}/health/live", timeout=10).status_code == 200
            assert time.perf_counter() - started < 0.4
    finally:
        healthy.close()
        listener.close()
