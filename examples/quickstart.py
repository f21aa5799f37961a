"""A circuit breaker that opens on failures, rejects calls, and recovers, printed as it happens.

Run it with ``python3 dev.py demo`` (or ``python examples/quickstart.py`` once installed).
A flaky "payments service" fails for a while; the breaker opens after three failures,
rejects calls at once while the service recovers, lets one trial call through after the
recovery timeout, and closes again when the trial succeeds.
"""

from __future__ import annotations

import time

from resilience_kit import CircuitBreaker, CircuitOpenError, CircuitState


class Transitions:
    """A listener that keeps every state change until the call that caused it is printed.

    A transition happens inside a call (the third failure opens the breaker before the call
    returns), so printing it at once would show it above the line of the call that caused it.
    """

    def __init__(self) -> None:
        self.pending: list[str] = []

    def on_state_change(
        self, breaker: CircuitBreaker, old: CircuitState, new: CircuitState, cause: str
    ) -> None:
        self.pending.append(f"    [{breaker.name}] {old} -> {new} ({cause})")

    def flush(self) -> None:
        for line in self.pending:
            print(line)
        self.pending.clear()


transitions = Transitions()


service_is_down = True

breaker = CircuitBreaker(
    "payments", failure_threshold=3, recovery_timeout=1.0, listeners=[transitions]
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
    transitions.flush()  # after the call's own line: the transitions it caused


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
