"""What every web integration answers, independent of the framework.

[Endpoints][resilience_kit.integrations._core.Endpoints] maps a method, a path and an
``Authorization`` header to a [Reply][resilience_kit.integrations._core.Reply]; the FastAPI
routers, the ASGI app and the WSGI app only translate requests and replies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import importlib
import inspect
import json
import math
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from resilience_kit.errors import CircuitOpenError, ConfigurationError, ResilienceError

if TYPE_CHECKING:
    from resilience_kit.health import HealthChecker, HealthReport

__all__ = [
    "ADMIN_TOKEN_ENV",
    "MIN_TOKEN_LENGTH",
    "Endpoints",
    "EndpointsApp",
    "Reply",
    "error_reply",
    "resolve_token",
    "token_matches",
]

ADMIN_TOKEN_ENV = "RESILIENCE_KIT_ADMIN_TOKEN"  # noqa: S105 - the variable's name
MIN_TOKEN_LENGTH = 16
_JSON = "application/json"
# The text format generate_latest writes. (prometheus-client 0.26 announces 1.0.0 as "latest",
# which older Prometheus servers do not know; 0.0.4 is what every server reads.)
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ACTIONS = ("force_open", "disable", "reset")

App = TypeVar("App")


class Reply(NamedTuple):
    """An HTTP answer: status, headers (lower-case names) and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_reply(status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    body = json.dumps(data, default=str, separators=(",", ":")).encode()
    return Reply(status, [("content-type", _JSON), *(headers or [])], body)


def resolve_token(token: str | None) -> str:
    """The admin token: ``token``, else the ``RESILIENCE_KIT_ADMIN_TOKEN`` variable.

    Raises:
        ConfigurationError: neither gives a token of at least 16 characters. The admin
            endpoints can open and close circuits: they never run unprotected.
    """
    value = token if token is not None else os.environ.get(ADMIN_TOKEN_ENV)
    if not isinstance(value, str) or len(value) < MIN_TOKEN_LENGTH:
        shown = None if value is None else f"<{len(value)} characters>"
        raise ConfigurationError(
            f"token must be a string of at least {MIN_TOKEN_LENGTH} characters (or set "
            f"{ADMIN_TOKEN_ENV}), got {shown}: the admin endpoints refuse to run without one",
            parameter="token",
            value=shown,
        )
    return value


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def token_matches(expected_digest: bytes, authorization: str | None) -> bool:
    """Whether ``authorization`` is ``Bearer <token>`` for the token with that digest.

    Both sides are hashed first and compared with `hmac.compare_digest`, so the time taken
    depends neither on how much of the token is right nor on its length.
    """
    scheme, _, given = (authorization or "").partition(" ")
    matches = hmac.compare_digest(_digest(given.strip()), expected_digest)
    return matches and scheme.lower() == "bearer"


def _retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds))) if math.isfinite(seconds) else "1"


def error_reply(error: BaseException, statuses: Mapping[type[BaseException], int]) -> Reply | None:
    """The reply for an error a guarded call raised, or ``None`` if it is not ours to answer.

    [CircuitOpenError][resilience_kit.CircuitOpenError] becomes 503 (and any error class in
    ``statuses`` its status); when the error has ``retry_after`` the reply
    has a ``Retry-After`` header (whole seconds, rounded up).
    """
    status = None
    for kind in type(error).__mro__:
        if kind in statuses:
            status = statuses[kind]
            break
    if status is None:
        return None
    data: dict[str, Any] = {"detail": str(error), "error": type(error).__name__}
    headers = []
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, (int, float)):
        data["retry_after"] = round(float(retry_after), 3)
        headers.append(("retry-after", _retry_after(float(retry_after))))
    if isinstance(error, CircuitOpenError):
        data["breaker"] = error.breaker
    return json_reply(status, data, headers)


def default_statuses() -> dict[type[BaseException], int]:
    """CircuitOpenError -> 503, plus the load-control errors API.md names (``RateLimitedError``
    -> 429, ``BulkheadFullError`` -> 503) once the library defines them (none does yet)."""
    statuses: dict[type[BaseException], int] = {CircuitOpenError: 503}
    for module_name in (
        "resilience_kit.errors",
        "resilience_kit.ratelimit",
        "resilience_kit.bulkhead",
    ):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # that primitive does not exist in this version
        for name, status in (("RateLimitedError", 429), ("BulkheadFullError", 503)):
            kind = getattr(module, name, None)
            if isinstance(kind, type) and issubclass(kind, ResilienceError):
                statuses[kind] = status
    return statuses


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _report_reply(report: HealthReport) -> Reply:
    return json_reply(report.http_status, report.to_dict(), [("cache-control", "no-store")])


class Endpoints:
    """The health, metrics and admin endpoints, routed by path.

    Args:
        checker: Serves ``<health_path>``, ``/ready`` and ``/live`` under it when given.
        metrics: Serve ``metrics_path`` (needs prometheus-client).
        registry: The registry the metrics come from (prometheus-client's default if None).
        admin: Serve the admin endpoints under ``admin_prefix`` (needs a token).
        token: The admin bearer token (else ``RESILIENCE_KIT_ADMIN_TOKEN``).
        cache_stats: A callable (sync or async) whose result ``/cache_stats`` shows.
        db_metrics: A callable (sync or async) whose result ``/db_metrics`` shows.
    """

    def __init__(
        self,
        *,
        checker: HealthChecker | None = None,
        metrics: bool = False,
        registry: Any = None,
        admin: bool = False,
        token: str | None = None,
        cache_stats: Callable[[], Any] | None = None,
        db_metrics: Callable[[], Any] | None = None,
        health_path: str = "/health",
        metrics_path: str = "/metrics",
        admin_prefix: str = "/admin",
    ) -> None:
        self.checker = checker
        self.metrics = metrics
        self.registry = registry
        self.admin = admin
        self._digest = _digest(resolve_token(token)) if admin else b""
        for name, source in (("cache_stats", cache_stats), ("db_metrics", db_metrics)):
            if source is not None and not callable(source):
                raise ConfigurationError(
                    f"{name} must be a callable or None, got {source!r}",
                    parameter=name,
                    value=source,
                )
        self.sources = {"cache_stats": cache_stats, "db_metrics": db_metrics}
        self.health_path = health_path.rstrip("/")
        self.metrics_path = metrics_path
        self.admin_prefix = admin_prefix.rstrip("/")
        if metrics:
            import prometheus_client  # noqa: F401 - fail at construction, not at first scrape

    # -- routing --------------------------------------------------------------------------------

    def _health_kind(self, path: str) -> str | None:
        if self.checker is None:
            return None
        return {
            self.health_path: "all",
            f"{self.health_path}/ready": "ready",
            f"{self.health_path}/live": "live",
        }.get(path)

    def handles(self, path: str) -> bool:
        """Whether ``path`` is one of these endpoints (else the wrapped app answers)."""
        return (
            self._health_kind(path) is not None
            or (self.metrics and path == self.metrics_path)
            or (self.admin and (path + "/").startswith(self.admin_prefix + "/"))
        )

    async def dispatch(self, method: str, path: str, authorization: str | None) -> Reply:
        """Answer a request on one of these paths (the async core)."""
        kind = self._health_kind(path)
        if kind is not None:
            if method not in ("GET", "HEAD"):
                return _not_allowed("GET")
            checker = self.checker
            assert checker is not None  # noqa: S101 - _health_kind checked it
            if kind == "live":
                return _report_reply(checker.liveness())
            report = await (checker.readiness() if kind == "ready" else checker.check_all())
            return _report_reply(report)
        if self.metrics and path == self.metrics_path:
            return self.metrics_reply(method)
        return await self._admin(method, path, authorization, sync=False)

    def dispatch_sync(self, method: str, path: str, authorization: str | None) -> Reply:
        """Answer a request without an event loop (WSGI)."""
        kind = self._health_kind(path)
        if kind is not None:
            if method not in ("GET", "HEAD"):
                return _not_allowed("GET")
            checker = self.checker
            assert checker is not None  # noqa: S101 - _health_kind checked it
            if kind == "live":
                return _report_reply(checker.liveness())
            report = checker.readiness_sync() if kind == "ready" else checker.check_all_sync()
            return _report_reply(report)
        if self.metrics and path == self.metrics_path:
            return self.metrics_reply(method)
        return asyncio.run(self._admin(method, path, authorization, sync=True))

    def metrics_reply(self, method: str) -> Reply:
        """The Prometheus scrape."""
        if method not in ("GET", "HEAD"):
            return _not_allowed("GET")
        from resilience_kit.prometheus import generate_latest

        return Reply(200, [("content-type", METRICS_CONTENT_TYPE)], generate_latest(self.registry))

    # -- admin ----------------------------------------------------------------------------------

    def authorized(self, authorization: str | None) -> bool:
        """Whether the header carries the admin token."""
        return token_matches(self._digest, authorization)

    async def _admin(
        self, method: str, path: str, authorization: str | None, *, sync: bool
    ) -> Reply:
        if not self.admin or not (path + "/").startswith(self.admin_prefix + "/"):
            return json_reply(404, {"detail": "not found"})
        if not self.authorized(authorization):
            return json_reply(
                401,
                {"detail": "a valid bearer token is required"},
                [("www-authenticate", 'Bearer realm="resilience_kit"')],
            )
        parts = [part for part in path[len(self.admin_prefix) :].split("/") if part]
        if parts in (["cache_stats"], ["db_metrics"]):
            if method not in ("GET", "HEAD"):
                return _not_allowed("GET")
            return await self._source(parts[0], sync=sync)
        if parts and parts[0] == "breakers":
            return self._breakers(method, parts[1:])
        return json_reply(404, {"detail": "not found"})

    async def _source(self, name: str, *, sync: bool) -> Reply:
        source = self.sources[name]
        if source is None:
            return json_reply(404, {"detail": f"no {name} source is configured"})
        value = source()
        if inspect.isawaitable(value):
            value = await value
        return json_reply(200, _jsonable(value), [("cache-control", "no-store")])

    def _breakers(self, method: str, parts: list[str]) -> Reply:
        from resilience_kit.breaker import breakers

        if not parts:
            if method not in ("GET", "HEAD"):
                return _not_allowed("GET")
            found = breakers()
            data = {name: found[name].to_dict() for name in sorted(found)}
            return json_reply(200, {"breakers": data}, [("cache-control", "no-store")])
        breaker = breakers().get(parts[0])
        if breaker is None:
            return json_reply(404, {"detail": f"no circuit breaker is named {parts[0]!r}"})
        if len(parts) == 1:
            if method not in ("GET", "HEAD"):
                return _not_allowed("GET")
            return json_reply(200, breaker.to_dict(), [("cache-control", "no-store")])
        if len(parts) == 2 and parts[1] in ACTIONS:
            if method != "POST":
                return _not_allowed("POST")
            getattr(breaker, parts[1])()
            return json_reply(200, {"breaker": breaker.name, "state": str(breaker.state)})
        return json_reply(404, {"detail": "not found"})


class EndpointsApp(Generic[App]):
    """What the ASGI and the WSGI app share: the endpoints, the error table and the wrapped app.

    [ResilienceApp][resilience_kit.integrations.asgi.ResilienceApp] documents the arguments;
    the subclasses only translate their protocol's requests and replies.
    """

    def __init__(
        self,
        app: App | None = None,
        *,
        checker: HealthChecker | None = None,
        metrics: bool = True,
        registry: Any = None,
        admin: bool = False,
        token: str | None = None,
        cache_stats: Callable[[], Any] | None = None,
        db_metrics: Callable[[], Any] | None = None,
        statuses: Mapping[type[BaseException], int] | None = None,
        health_path: str = "/health",
        metrics_path: str = "/metrics",
        admin_prefix: str = "/admin",
    ) -> None:
        self.app = app
        self.endpoints = Endpoints(
            checker=checker,
            metrics=metrics,
            registry=registry,
            admin=admin,
            token=token,
            cache_stats=cache_stats,
            db_metrics=db_metrics,
            health_path=health_path,
            metrics_path=metrics_path,
            admin_prefix=admin_prefix,
        )
        self.statuses = {**default_statuses(), **(statuses or {})}


def _not_allowed(allowed: str) -> Reply:
    return json_reply(405, {"detail": "method not allowed"}, [("allow", allowed)])
