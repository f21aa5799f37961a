"""Health, metrics and admin endpoints as a plain ASGI app, or a middleware around yours.

No framework needed: any ASGI server (uvicorn, hypercorn, granian) or framework (Starlette,
Litestar, Quart, Django's ASGI handler) can serve it.

```python
from resilience_kit.health import HealthChecker
from resilience_kit.integrations.asgi import ResilienceApp

checker = HealthChecker({"ok": lambda: True})
app = ResilienceApp(
    checker=checker, metrics=False
)  # /health, /health/ready, /health/live
```

Wrapping your own app, it answers its own paths and hands every other request on; errors a
guarded call raises out of your app ([CircuitOpenError][resilience_kit.CircuitOpenError], and
classes you map in ``statuses``, such as your rate limiter's error to 429) become their status
with a ``Retry-After`` header, as long as no response has started.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

from resilience_kit.integrations._core import EndpointsApp, Reply, error_reply

__all__ = ["ASGIApp", "ResilienceApp"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _path(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):  # mounted under a prefix (Starlette, FastAPI)
        path = path[len(root) :] or "/"
    return path


async def send_reply(send: Send, reply: Reply, *, head: bool = False) -> None:
    """Send ``reply`` as an ASGI response (headers only for HEAD)."""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else reply.body})


class ResilienceApp(EndpointsApp[ASGIApp]):
    """An ASGI app serving the health, metrics and admin endpoints; a middleware if ``app``.

    Args:
        app: Your ASGI app, called for every other path (``None``: those get 404).
        checker: Serves ``/health``, ``/health/ready`` and ``/health/live``.
        metrics: Serve ``/metrics`` (needs prometheus-client).
        registry: The registry to scrape (prometheus-client's default if ``None``).
        admin: Serve ``/admin/...`` behind the bearer token.
        token: The admin token (at least 16 characters), else ``RESILIENCE_KIT_ADMIN_TOKEN``;
            with ``admin`` and neither, construction raises
            [ConfigurationError][resilience_kit.ConfigurationError].
        cache_stats: A callable (sync or async) whose result ``/admin/cache_stats`` shows.
        db_metrics: A callable (sync or async) whose result ``/admin/db_metrics`` shows.
        statuses: Extra error classes and the status each becomes (added to
            [CircuitOpenError][resilience_kit.CircuitOpenError] -> 503), e.g. your rate
            limiter's error -> 429.
        health_path: Where the health endpoints live.
        metrics_path: Where the scrape lives.
        admin_prefix: Where the admin endpoints live.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        kind = scope.get("type")
        if kind == "http" and self.endpoints.handles(_path(scope)):
            method = str(scope.get("method", "GET")).upper()
            authorization = _header(scope, b"authorization")
            reply = await self.endpoints.dispatch(method, _path(scope), authorization)
            await send_reply(send, reply, head=method == "HEAD")
            return
        if self.app is None:
            if kind == "lifespan":
                await _lifespan(receive, send)
            elif kind == "http":
                await send_reply(send, Reply(404, [("content-type", "text/plain")], b"not found"))
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            mapped = error_reply(error, self.statuses)
            if mapped is None or started:
                raise
            await send_reply(send, mapped)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
