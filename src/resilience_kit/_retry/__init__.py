"""Retry policies, presets, statistics and the ``@retry`` decorator (implementation).

The public names live in [resilience_kit.retry][], which imports them from the modules here
(this package re-exports nothing), one module per responsibility: ``policy`` (the frozen value
and ``from_env``), ``presets``, ``stats``, ``log`` (redacted log records), ``sleeps`` (sleeping
and ``no_waits``), ``loop`` (the retries after a first failure) and ``decorator``.

tenacity runs every retry: the waits, the stop conditions, the retry predicate, the sleeping.
What this package adds is a frozen policy object, presets, exact statistics, logging with
redaction, a deadline read from the library's clock, and a first attempt that costs almost
nothing: the wrapper calls the function directly and only a failure that the policy retries
builds a tenacity loop, seeded with that first failure as attempt 1.
"""
