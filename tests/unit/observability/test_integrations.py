"""FastAPI routers, the plain ASGI app and the WSGI twin: one behaviour through three doors."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from resilience_kit import CircuitBreaker, CircuitOpenError, ConfigurationError, ResilienceError
from resilience_kit.health import HealthChecker, check_breaker
from resilience_kit.integrations import _core
from resilience_kit.integrations.asgi import ResilienceApp
from resilience_kit.integrations.fastapi import (
    admin_router,
    health_router,
    install_exception_handlers,
    metrics_router,
)
from resilience_kit.integrations.wsgi import ResilienceWSGI, register_flask_error_handlers

pytestmark = pytest.mark.usefixtures("breakers")

TOKEN = "s3cret-admin-token-0123456789"  # noqa: S105 - a test token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Throttled(ResilienceError):
    """A stand-in for a rate limiter's error: it carries ``retry_after``."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited; retry in {retry_after}s")
        self.retry_after = retry_after


@dataclasses.dataclass(frozen=True)
class FakeCacheStats:
    hits: int
    misses: int


@pytest.fixture
def upstream(breakers: object) -> Iterator[CircuitBreaker]:
    breaker = CircuitBreaker("http-upstream", failure_threshold=1, recovery_timeout=42.2)
    yield breaker
    breaker.unregister()  # the apps built around it are freed only by the cycle collector


def make_checker(breaker: CircuitBreaker) -> HealthChecker:
    return HealthChecker(
        {"upstream": check_breaker(breaker), "search": lambda: False},
        critical=["upstream"],
        cache_ttl=0,
        version="9.9.9",
    )


async def db_metrics() -> dict[str, Any]:
    return {"db_metrics": {"total_queries": 3}}


def fastapi_app(breaker: CircuitBreaker, registry: CollectorRegistry) -> FastAPI:
    app = FastAPI()
    app.include_router(health_router(make_checker(breaker)))
    app.include_router(metrics_router(registry=registry))
    app.include_router(
        admin_router(token=TOKEN, cache_stats=lambda: FakeCacheStats(5, 1), db_metrics=db_metrics)
    )
    install_exception_handlers(app, statuses={Throttled: 429})

    @app.get("/pay")
    def pay() -> str:
        return str(breaker.call(lambda: "paid"))

    @app.get("/search")
    def search() -> None:
        raise Throttled(2.2)

    return app


def asgi_app(breaker: CircuitBreaker, registry: CollectorRegistry) -> ResilienceApp:
    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/search":
            raise Throttled(2.2)
        body = str(breaker.call(lambda: "paid")).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return ResilienceApp(
        inner,
        checker=make_checker(breaker),
        registry=registry,
        admin=True,
        token=TOKEN,
        cache_stats=lambda: FakeCacheStats(5, 1),
        db_metrics=db_metrics,
        statuses={Throttled: 429},
    )


@pytest.fixture(params=["fastapi", "asgi"])
async def client(
    request: pytest.FixtureRequest, upstream: CircuitBreaker, registry: CollectorRegistry
) -> AsyncIterator[httpx.AsyncClient]:
    build = fastapi_app if request.param == "fastapi" else asgi_app
    transport = httpx.ASGITransport(app=build(upstream, registry))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_health_endpoints(client: httpx.AsyncClient, upstream: CircuitBreaker) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "degraded"
    assert body["version"] == "9.9.9"
    assert body["checks"]["upstream"]["details"]["state"] == "CLOSED"
    assert body["checks"]["search"]["status"] == "unhealthy"
    assert health.headers["cache-control"] == "no-store"
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert set(ready.json()["checks"]) == {"upstream"}
    upstream.force_open()
    assert (await client.get("/health")).status_code == 503
    assert (await client.get("/health/ready")).status_code == 503
    live = await client.get("/health/live")
    assert live.status_code == 200
    assert live.json()["checks"] == {}


async def test_metrics_endpoint(client: httpx.AsyncClient, upstream: CircuitBreaker) -> None:
    upstream.call(lambda: 1)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    key = (
        "resilience_kit_breaker_calls_total",
        (("breaker", "http-upstream"), ("outcome", "success")),
    )
    assert samples[key] == 1


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", ""],
)
async def test_admin_refuses_a_missing_or_wrong_token(
    client: httpx.AsyncClient, upstream: CircuitBreaker, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in [
        ("GET", "/admin/breakers"),
        ("GET", "/admin/breakers/http-upstream"),
        ("POST", "/admin/breakers/http-upstream/force_open"),
        ("GET", "/admin/cache_stats"),
        ("GET", "/admin/db_metrics"),
    ]:
        response = await client.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert str(upstream.state) == "CLOSED"


async def test_admin_breakers_and_actions(
    client: httpx.AsyncClient, upstream: CircuitBreaker
) -> None:
    listing = await client.get("/admin/breakers", headers=AUTH)
    assert listing.status_code == 200
    assert listing.json()["breakers"]["http-upstream"]["total_blocked"] == 0
    one = await client.get("/admin/breakers/http-upstream", headers=AUTH)
    assert one.json()["state"] == "CLOSED"
    for action, state in [
        ("force_open", "FORCED_OPEN"),
        ("disable", "DISABLED"),
        ("reset", "CLOSED"),
    ]:
        response = await client.post(f"/admin/breakers/http-upstream/{action}", headers=AUTH)
        assert response.status_code == 200
        assert response.json() == {"breaker": "http-upstream", "state": state}
        assert str(upstream.state) == state
    assert (await client.get("/admin/breakers/nope", headers=AUTH)).status_code == 404
    bad_action = await client.post("/admin/breakers/http-upstream/explode", headers=AUTH)
    assert bad_action.status_code == 404
    assert (
        await client.get("/admin/breakers/http-upstream/reset", headers=AUTH)
    ).status_code == 405


async def test_admin_cache_and_db_sources(client: httpx.AsyncClient) -> None:
    cache = await client.get("/admin/cache_stats", headers=AUTH)
    assert cache.status_code == 200
    assert cache.json() == {"hits": 5, "misses": 1}
    database = await client.get("/admin/db_metrics", headers=AUTH)
    assert database.json() == {"db_metrics": {"total_queries": 3}}


async def test_open_circuit_is_503_and_a_rate_limit_429_with_retry_after(
    client: httpx.AsyncClient, upstream: CircuitBreaker
) -> None:
    assert (await client.get("/pay")).status_code == 200
    with pytest.raises(ZeroDivisionError):
        upstream.call(lambda: 1 / 0)
    rejected = await client.get("/pay")
    assert rejected.status_code == 503
    assert rejected.headers["retry-after"] == "43", "42.2 s rounded up"
    body = rejected.json()
    assert body["breaker"] == "http-upstream"
    assert body["error"] == "CircuitOpenError"
    assert math.isclose(body["retry_after"], 42.2, abs_tol=0.5)
    limited = await client.get("/search")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"


def test_admin_refuses_to_mount_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_core.ADMIN_TOKEN_ENV, raising=False)
    for build in (
        admin_router,
        lambda: admin_router(token="short"),  # noqa: S106 - too short on purpose
        lambda: ResilienceApp(admin=True, metrics=False),
        lambda: ResilienceWSGI(admin=True, metrics=False),
    ):
        with pytest.raises(ConfigurationError, match="refuse to run without one") as caught:
            build()
        assert "short" not in str(caught.value), "the message never shows the token"
    monkeypatch.setenv(_core.ADMIN_TOKEN_ENV, TOKEN)
    assert admin_router().routes


def test_token_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int]] = []
    real = _core.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(_core.hmac, "compare_digest", spy)
    digest = _core._digest(TOKEN)
    given = [
        None,
        "",
        "Bearer x",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN * 50}",
        f"Bearer {TOKEN}",
    ]
    results = [_core.token_matches(digest, header) for header in given]
    assert results == [False] * 5 + [True]
    assert seen == [(32, 32)] * len(given), "every comparison is of two 32-byte digests"


async def test_plain_asgi_app_alone_and_mounted(registry: CollectorRegistry) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = ResilienceApp(checker=HealthChecker({"ok": lambda: True}), registry=registry)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:  # type: ignore[arg-type]
        assert (await c.get("/health")).json()["status"] == "healthy"
        assert (await c.get("/elsewhere")).status_code == 404
        head = await c.head("/health/live")
        assert head.status_code == 200
        assert head.content == b""
        assert (await c.post("/health")).status_code == 405
        assert (await c.get("/admin/breakers", headers=AUTH)).status_code == 404, "admin is off"
    outer = Starlette(routes=[Mount("/ops", app=app)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=outer), base_url="http://t"
    ) as c:
        assert (await c.get("/ops/health/live")).status_code == 200
        assert (await c.get("/ops/metrics")).status_code == 200


def test_wsgi_twin_with_flask(upstream: CircuitBreaker, registry: CollectorRegistry) -> None:
    import flask

    app = flask.Flask("shop")

    @app.get("/pay")
    def pay() -> str:
        return str(upstream.call(lambda: "paid"))

    @app.get("/search")
    def search() -> str:
        raise Throttled(0.3)

    register_flask_error_handlers(app, statuses={Throttled: 429})
    app.wsgi_app = ResilienceWSGI(  # type: ignore[method-assign]
        app.wsgi_app,
        checker=make_checker(upstream),
        registry=registry,
        admin=True,
        token=TOKEN,
        cache_stats=lambda: FakeCacheStats(5, 1),
        db_metrics=db_metrics,
    )
    client = app.test_client()
    assert client.get("/pay").text == "paid"
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json["checks"]["upstream"]["status"] == "healthy"
    assert client.get("/health/live").json["status"] == "healthy"
    assert b"resilience_kit_breaker_state" in client.get("/metrics").data
    assert client.get("/admin/breakers").status_code == 401
    assert (
        client.get("/admin/breakers", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    assert client.get("/admin/db_metrics", headers=AUTH).json == {
        "db_metrics": {"total_queries": 3}
    }
    assert client.get("/admin/cache_stats", headers=AUTH).json == {"hits": 5, "misses": 1}
    forced = client.post("/admin/breakers/http-upstream/force_open", headers=AUTH)
    assert forced.json == {"breaker": "http-upstream", "state": "FORCED_OPEN"}
    assert client.get("/health").status_code == 503
    rejected = client.get("/pay")
    assert rejected.status_code == 503
    assert rejected.headers["Retry-After"] == "1"
    assert rejected.json["breaker"] == "http-upstream"
    limited = client.get("/search")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"


def test_wsgi_middleware_maps_errors_escaping_a_plain_wsgi_app(upstream: CircuitBreaker) -> None:
    from werkzeug.test import Client

    def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        result = upstream.call(lambda: b"ok")
        start_response("200 OK", [("content-type", "text/plain")])
        return [result]

    client = Client(ResilienceWSGI(inner, metrics=False))
    assert client.get("/x").data == b"ok"
    upstream.force_open()
    response = client.get("/x")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    alone = Client(ResilienceWSGI(metrics=False))
    assert alone.get("/health").status_code == 404, "no checker: no health endpoints"


def test_circuit_open_error_statuses_without_retry_after_header() -> None:
    reply = _core.error_reply(CircuitOpenError("b", 0.0), _core.default_statuses())
    assert reply is not None
    assert reply.status == 503
    assert dict(reply.headers)["retry-after"] == "1", "never 0: clients would retry at once"
    assert _core.error_reply(ValueError("x"), _core.default_statuses()) is None


def test_a_rate_limit_error_of_the_library_would_map_to_429_without_statuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No RateLimitedError exists yet (API.md names it for the load-control primitives); once
    # resilience_kit.errors (or .ratelimit) defines one, the handlers answer it with 429.
    from resilience_kit import errors

    class RateLimitedError(ResilienceError):
        retry_after = 0.2

    assert not hasattr(errors, "RateLimitedError")
    monkeypatch.setattr(errors, "RateLimitedError", RateLimitedError, raising=False)
    reply = _core.error_reply(RateLimitedError(), _core.default_statuses())
    assert reply is not None
    assert reply.status == 429
    assert dict(reply.headers)["retry-after"] == "1"
