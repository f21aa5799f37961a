"""Web endpoints for health, metrics and breaker administration.

- [resilience_kit.integrations.fastapi][resilience_kit.integrations.fastapi]: routers and
  exception handlers for FastAPI (the ``fastapi`` extra).
- [resilience_kit.integrations.asgi][resilience_kit.integrations.asgi]: the same endpoints as a
  plain ASGI app or middleware, for any ASGI server or framework (no dependency).
- [resilience_kit.integrations.wsgi][resilience_kit.integrations.wsgi]: the WSGI twin, for
  Flask, Django or any WSGI server (no dependency).

All three answer the same paths with the same JSON, from one core.
"""
