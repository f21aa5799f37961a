"""`resilience_kit.retry` is one object: the module, and callable as the decorator."""

from __future__ import annotations

import importlib
import subprocess
import sys

import resilience_kit
import resilience_kit.retry
from resilience_kit import retry


def test_the_package_attribute_the_import_and_the_module_are_one_object() -> None:
    import resilience_kit.retry as by_import_as

    assert retry is resilience_kit.retry is by_import_as is sys.modules["resilience_kit.retry"]
    assert resilience_kit.retry.RetryPolicy is resilience_kit.RetryPolicy
    assert importlib.import_module("resilience_kit.retry") is retry


def test_calling_the_module_decorates() -> None:
    @retry("database")
    def fn() -> int:
        return 7

    @resilience_kit.retry
    def bare() -> int:
        return 8

    assert (fn(), bare()) == (7, 8)
    assert fn.__name__ == "fn"


def test_any_import_order_gives_the_same_object() -> None:
    code = (
        "import resilience_kit.retry as m, resilience_kit, sys;"
        "from resilience_kit import retry;"
        "from resilience_kit.retry import retry as fn, RetryPolicy;"
        "assert m is retry is resilience_kit.retry is sys.modules['resilience_kit.retry'];"
        "assert callable(fn) and fn is not m;"
        "print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr
