"""A circuit breaker that opens on failures, rejects calls, and recovers, printed as it happens.

Run it with ``python3 dev.py demo`` (or ``python examples/quickstart.py`` once installed).
A flaky "payments service" fails for a while; the breaker opens after three failures,
rejects calls at once while the service recovers, lets one trial call through after the
recovery timeout, and closes again when the trial succeeds.
"""

from __future__ import annotations

import time

from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState


class Printer:
    """A listener that prints every state change."""

    def on_state_change(
        self, breaker: CircuitBreaker, old: CircuitState, new: CircuitState
    ) -> None:
        print(f"    [{breaker.name}] {old} -> {new}")


service_is_down = True

breaker = CircuitBreaker(
    "payments", failure_threshold=3, recovery_timeout=1.0, listeners=[Printer()]
)


@breaker
def charge(amount: int) -> str:
    if service_is_down:
        raise ConnectionError("payments service unreachable")
    return f"charged {amount}"


def attempt(amount: int) -> None:
    try:
        print(f"charge({amount}) -> {charge(amount)}")
    except CircuitOpenError as error:
        print(f"charge({amount}) rejected at once: {error}")
    except ConnectionError as error:
        print(f"charge({amount}) failed: {error}")


def main() -> None:
    print("1. The service is down: three failures open the breaker.")
    for amount in (10, 20, 30):
        attempt(amount)
    print("2. While OPEN, calls are rejected without touching the service.")
    attempt(40)
    attempt(50)
    print("3. The service recovers; after the recovery timeout one trial call is let through.")
    global service_is_down  # noqa: PLW0603 - the demo's stand-in for a real outage
    service_is_down = False
    time.sleep(breaker.stats().retry_after + 0.05)
    attempt(60)
    print("4. Closed again: calls flow normally.")
    attempt(70)
    stats = breaker.stats()
    print(
        f"stats: state={stats.state} calls={stats.total_calls} "
        f"failures={stats.total_failures} rejected={stats.total_rejected}"
    )


if __name__ == "__main__":
    main()
