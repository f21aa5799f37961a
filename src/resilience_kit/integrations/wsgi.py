"""The WSGI twin of [ResilienceApp][resilience_kit.integrations.asgi.ResilienceApp].

For Flask, Django or any WSGI server, without a dependency:

```python
from resilience_kit.health import HealthChecker
from resilience_kit.integrations.wsgi import ResilienceWSGI

checker = HealthChecker({"ok": lambda: True})
application = ResilienceWSGI(checker=checker, metrics=False)
```

Around a Flask app: ``app.wsgi_app = ResilienceWSGI(app.wsgi_app, checker=checker)``; around
Django: ``application = ResilienceWSGI(get_wsgi_application(), checker=checker)`` in
``wsgi.py``. Flask turns a view's exception into a 500 before any middleware sees it: add
[register_flask_error_handlers][resilience_kit.integrations.wsgi.register_flask_error_handlers]
for the 503 replies (and the statuses you map, such as 429).

Health checks run on an event loop of their own per probe (``asyncio.run``): give async checks
clients that are not bound to another loop, or use sync clients.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any, TypeAlias

from resilience_kit.integrations._core import EndpointsApp, Reply, default_statuses, error_reply

__all__ = ["ResilienceWSGI", "WSGIApp", "register_flask_error_handlers"]

WSGIApp: TypeAlias = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
"""A WSGI application."""


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _headers(reply: Reply) -> list[tuple[str, str]]:
    return [*reply.headers, ("content-length", str(len(reply.body)))]


class ResilienceWSGI(EndpointsApp[WSGIApp]):
    """A WSGI app serving the health, metrics and admin endpoints; a middleware if ``app``.

    Takes the same arguments as [ResilienceApp][resilience_kit.integrations.asgi.ResilienceApp].
    """

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """The WSGI entry point."""
        path = environ.get("PATH_INFO", "") or "/"
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if self.endpoints.handles(path):
            reply = self.endpoints.dispatch_sync(method, path, environ.get("HTTP_AUTHORIZATION"))
            start_response(_status_line(reply.status), _headers(reply))
            return [b"" if method == "HEAD" else reply.body]
        if self.app is None:
            start_response("404 Not Found", [("content-type", "text/plain")])
            return [b"not found"]
        started = False

        def tracking_start_response(*args: Any) -> Any:
            nonlocal started
            started = True
            return start_response(*args)

        try:
            return self.app(environ, tracking_start_response)
        except Exception as error:
            mapped = error_reply(error, self.statuses)
            if mapped is None:
                raise
            # After the app's own start_response, exc_info lets the server replace the
            # headers it has not sent yet (or re-raise if it has).
            extra = (sys.exc_info(),) if started else ()
            start_response(_status_line(mapped.status), _headers(mapped), *extra)
            return [mapped.body]


def register_flask_error_handlers(
    app: Any, *, statuses: Mapping[type[BaseException], int] | None = None
) -> None:
    """Answer [CircuitOpenError][resilience_kit.CircuitOpenError] with 503, and the classes in
    ``statuses`` with their status (``Retry-After`` set), in a Flask ``app`` (or blueprint)."""
    table = {**default_statuses(), **(statuses or {})}

    def handle(error: BaseException) -> tuple[bytes, int, list[tuple[str, str]]]:
        reply = error_reply(error, table)
        if reply is None:  # pragma: no cover - registered only for classes in the table
            raise error
        return reply.body, reply.status, reply.headers

    for kind in table:
        app.register_error_handler(kind, handle)
