"""What @retry accepts besides a def: async callable instances, partials, static/class methods."""

from __future__ import annotations

import functools
import inspect
from typing import ClassVar

from retry_support import Sleeps

from resilience_kit import RetryPolicy, retry

FAST = RetryPolicy(name="forms", attempts=3, min_wait=0.0, max_wait=0.0, retry_on=(OSError,))


class AsyncClient:
    """A callable instance whose ``__call__`` is a coroutine function (an API client)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, path: str = "/") -> str:
        self.calls += 1
        if self.calls < 3:
            raise ConnectionError("down")
        return f"GET {path}"


async def test_an_async_callable_instance_is_awaited_and_retried(sleeps: Sleeps) -> None:
    client = AsyncClient()
    fetch = retry(FAST, sleep=sleeps.async_sleep)(client)
    assert inspect.iscoroutinefunction(fetch)
    assert await fetch("/items") == "GET /items"
    assert client.calls == 3
    assert sleeps.recorded == [0.0, 0.0]


async def test_a_partial_of_an_async_callable_instance_is_async(sleeps: Sleeps) -> None:
    client = AsyncClient()
    fetch = retry(FAST, sleep=sleeps.async_sleep)(functools.partial(client, "/p"))
    assert inspect.iscoroutinefunction(fetch)
    assert await fetch() == "GET /p"
    assert client.calls == 3


async def test_a_partial_of_a_coroutine_function_is_async(sleeps: Sleeps) -> None:
    calls: list[int] = []

    async def fetch(n: int) -> int:
        calls.append(n)
        if len(calls) < 2:
            raise OSError("again")
        return n

    wrapped = retry(FAST, sleep=sleeps.async_sleep)(functools.partial(fetch, 7))
    assert inspect.iscoroutinefunction(wrapped)
    assert await wrapped() == 7
    assert calls == [7, 7]


def test_the_wrapper_does_not_freeze_a_copy_of_the_instances_attributes() -> None:
    client = AsyncClient()
    fetch = retry(FAST)(client)
    assert fetch.__wrapped__ is client  # type: ignore[attr-defined]
    assert "calls" not in vars(fetch)


def test_a_class_with_an_async_call_is_decorated_as_a_plain_constructor() -> None:
    # Calling the class builds an instance; only the instance's calls are coroutines.
    make = retry(FAST)(AsyncClient)
    assert not inspect.iscoroutinefunction(make)
    assert isinstance(make(), AsyncClient)


class Repository:
    attempts: ClassVar[list[str]] = []

    @retry(FAST)
    @staticmethod
    def load(key: str) -> str:
        Repository.attempts.append(key)
        if len(Repository.attempts) < 2:
            raise OSError("flaky")
        return key.upper()

    @retry(FAST)
    @classmethod
    def create(cls, key: str) -> str:
        cls.attempts.append(key)
        if len(cls.attempts) < 2:
            raise OSError("flaky")
        return f"{cls.__name__}:{key}"

    @retry
    @staticmethod
    def bare(x: int) -> int:
        return x + 1


def test_retry_over_staticmethod_works_on_the_class_and_on_instances() -> None:
    Repository.attempts = []
    assert Repository.load("a") == "A"
    assert Repository.attempts == ["a", "a"]
    Repository.attempts = []
    assert Repository().load("b") == "B"  # no instance slipped in as the first argument
    assert Repository.attempts == ["b", "b"]
    assert isinstance(inspect.getattr_static(Repository, "load"), staticmethod)


def test_retry_over_classmethod_binds_the_class_and_retries() -> None:
    class Child(Repository):
        pass

    Repository.attempts = []
    assert Repository.create("k") == "Repository:k"
    assert Repository.attempts == ["k", "k"]
    Repository.attempts = []
    assert Child().create("c") == "Child:c"
    assert isinstance(inspect.getattr_static(Repository, "create"), classmethod)


def test_bare_retry_over_staticmethod() -> None:
    assert Repository.bare(1) == 2
    assert Repository().bare(2) == 3
