"""Web endpoints for health, metrics and breaker administration.

- `resilience_kit.integrations.fastapi`: routers
  ([health_router][resilience_kit.integrations.fastapi.health_router] and the others) and
  exception handlers for FastAPI (the ``fastapi`` extra).
- `resilience_kit.integrations.asgi`: the same endpoints as a plain ASGI app or middleware,
  [ResilienceApp][resilience_kit.integrations.asgi.ResilienceApp], for any ASGI server or
  framework (no dependency).
- `resilience_kit.integrations.wsgi`: the WSGI twin,
  [ResilienceWSGI][resilience_kit.integrations.wsgi.ResilienceWSGI], for Flask, Django or any
  WSGI server (no dependency).

All three answer the same paths with the same JSON, from one core.
"""
