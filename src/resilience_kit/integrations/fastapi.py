"""FastAPI routers for health, metrics and breaker administration, and exception handlers.

```python
from fastapi import FastAPI

from resilience_kit.health import HealthChecker
from resilience_kit.integrations.fastapi import (
    health_router,
    install_exception_handlers,
)

app = FastAPI()
app.include_router(health_router(HealthChecker({"ok": lambda: True})))
install_exception_handlers(app)  # CircuitOpenError -> 503 with Retry-After
```

Needs the ``fastapi`` extra. The routes answer exactly as the plain
[ASGI app][resilience_kit.integrations.asgi.ResilienceApp] does: one core serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response

from resilience_kit.integrations._core import Endpoints, Reply, default_statuses, error_reply

if TYPE_CHECKING:
    from fastapi import FastAPI

    from resilience_kit.health import HealthChecker

__all__ = ["admin_router", "health_router", "install_exception_handlers", "metrics_router"]


def _response(reply: Reply, method: str = "GET") -> Response:
    headers = {name: value for name, value in reply.headers if name != "content-type"}
    media_type = dict(reply.headers).get("content-type")
    body = b"" if method == "HEAD" else reply.body
    return Response(body, status_code=reply.status, headers=headers, media_type=media_type)


def health_router(
    checker: HealthChecker, *, prefix: str = "/health", tags: list[str] | None = None
) -> APIRouter:
    """``GET <prefix>`` (every check), ``<prefix>/ready`` (critical checks) and
    ``<prefix>/live`` (no dependency): the report as JSON, 200 or 503."""
    endpoints = Endpoints(checker=checker, health_path=prefix)
    router = APIRouter(tags=list(tags if tags is not None else ["health"]))
    base = endpoints.health_path

    async def health() -> Response:
        """Every check: 200 when healthy or degraded, 503 when a critical check fails."""
        return _response(await endpoints.dispatch("GET", base, None))

    async def ready() -> Response:
        """The critical checks: whether to send this instance traffic."""
        return _response(await endpoints.dispatch("GET", f"{base}/ready", None))

    async def live() -> Response:
        """Always 200 while the process answers: touches no dependency."""
        return _response(await endpoints.dispatch("GET", f"{base}/live", None))

    router.add_api_route(base or "/", health, methods=["GET"], response_class=Response)
    router.add_api_route(f"{base}/ready", ready, methods=["GET"], response_class=Response)
    router.add_api_route(f"{base}/live", live, methods=["GET"], response_class=Response)
    return router


def metrics_router(
    *, registry: Any = None, path: str = "/metrics", include_in_schema: bool = False
) -> APIRouter:
    """``GET <path>``: the Prometheus scrape of ``registry`` (prometheus-client's default if
    ``None``), through [generate_latest][resilience_kit.prometheus.generate_latest]."""
    endpoints = Endpoints(metrics=True, registry=registry, metrics_path=path)
    router = APIRouter()

    async def metrics() -> Response:
        """The Prometheus text format."""
        return _response(endpoints.metrics_reply("GET"))

    router.add_api_route(
        path, metrics, methods=["GET"], response_class=Response, include_in_schema=include_in_schema
    )
    return router


def admin_router(
    *,
    token: str | None = None,
    cache_stats: Callable[[], Any] | None = None,
    db_metrics: Callable[[], Any] | None = None,
    prefix: str = "/admin",
    tags: list[str] | None = None,
    include_in_schema: bool = False,
) -> APIRouter:
    """Breaker administration and stats, behind a bearer token.

    Routes (each answers 401 without ``Authorization: Bearer <token>``):
    ``GET <prefix>/breakers``, ``GET <prefix>/breakers/{name}``,
    ``POST <prefix>/breakers/{name}/force_open`` (and ``/disable``, ``/reset``),
    ``GET <prefix>/cache_stats`` and ``GET <prefix>/db_metrics`` (404 unless the callable is
    given; it may be sync or async and return a mapping, a dataclass or an object with
    ``to_dict()``).

    Args:
        token: At least 16 characters, else ``RESILIENCE_KIT_ADMIN_TOKEN``; compared in
            constant time.
        cache_stats: What ``/cache_stats`` shows.
        db_metrics: What ``/db_metrics`` shows.
        prefix: Where the routes live.
        tags: OpenAPI tags.
        include_in_schema: Show the routes in the OpenAPI schema.

    Raises:
        ConfigurationError: no token (or a shorter one): the router is never built unprotected.
    """
    endpoints = Endpoints(
        admin=True,
        token=token,
        cache_stats=cache_stats,
        db_metrics=db_metrics,
        admin_prefix=prefix,
    )
    base = endpoints.admin_prefix
    router = APIRouter(tags=list(tags if tags is not None else ["admin"]))

    def route(path: str, method: str) -> Callable[[Callable[..., Any]], Any]:
        return router.api_route(
            f"{base}{path}",
            methods=[method],
            response_class=Response,
            include_in_schema=include_in_schema,
        )

    async def answer(request: Request, method: str, path: str) -> Response:
        authorization = request.headers.get("authorization")
        return _response(await endpoints.dispatch(method, f"{base}{path}", authorization))

    @route("/breakers", "GET")
    async def list_breakers(request: Request) -> Response:
        """Every breaker's figures, by name."""
        return await answer(request, "GET", "/breakers")

    @route("/breakers/{name}", "GET")
    async def show_breaker(request: Request, name: str) -> Response:
        """One breaker's figures."""
        return await answer(request, "GET", f"/breakers/{name}")

    @route("/breakers/{name}/{action}", "POST")
    async def control_breaker(request: Request, name: str, action: str) -> Response:
        """``force_open``, ``disable`` or ``reset`` a breaker."""
        return await answer(request, "POST", f"/breakers/{name}/{action}")

    @route("/cache_stats", "GET")
    async def show_cache_stats(request: Request) -> Response:
        """What the ``cache_stats`` callable returns."""
        return await answer(request, "GET", "/cache_stats")

    @route("/db_metrics", "GET")
    async def show_db_metrics(request: Request) -> Response:
        """What the ``db_metrics`` callable returns."""
        return await answer(request, "GET", "/db_metrics")

    return router


def install_exception_handlers(
    app: FastAPI, *, statuses: Mapping[type[BaseException], int] | None = None
) -> None:
    """Answer [CircuitOpenError][resilience_kit.CircuitOpenError] with 503, and the classes in
    ``statuses`` with their status (your rate limiter's error with 429, say), each with a
    ``Retry-After`` header from the error's ``retry_after`` when it has one.

    Args:
        app: The FastAPI (or Starlette) application.
        statuses: More error classes and the status each becomes.
    """
    table = {**default_statuses(), **(statuses or {})}

    async def handle(request: Request, error: Exception) -> Response:
        reply = error_reply(error, table)
        if reply is None:  # pragma: no cover - registered only for classes in the table
            raise error
        return _response(reply)

    for kind in table:
        app.add_exception_handler(kind, handle)  # type: ignore[arg-type]
