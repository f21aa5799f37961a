"""Callgrind's counters zeroed and dumped from Python by client requests, with no C compiler.

A counted loop must start and end exactly where the harness says, and nothing else in the
process may move those points. Marking them by entering a libc function (``--zero-before=`` /
``--dump-before=``) cannot promise that: any library may call the function (the Prometheus scrape
calls ``getppid()``, which was once the dump marker, and split the count). Callgrind's *client
requests* (``CALLGRIND_ZERO_STATS`` and ``CALLGRIND_DUMP_STATS_AT`` in ``callgrind.h``) are made
only by code compiled against ``valgrind.h`` that asks for them, and the dump names the request's
label, so a dump can be traced to the request that made it.

A client request is no function call but a fixed instruction sequence valgrind recognises as it
translates the code. We have no compiler at run time (CI starts from Python alone), so the
sequence ``valgrind.h`` emits for x86-64 is written here as machine code into a page of its own and
called through ``ctypes``. Outside valgrind the sequence does nothing (the rotations of ``%rdi`` add
up to 128 bits and ``xchg %rbx,%rbx`` swaps a register with itself) and the request returns 0.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import platform
from collections.abc import Callable

# uint64 request(uint64 args[6]): valgrind.h's VALGRIND_DO_CLIENT_REQUEST_EXPR for amd64 (System V
# ABI: args in %rdi, the answer in %rax), assembled and checked with objdump.
_AMD64_REQUEST = bytes.fromhex(
    "4889f8"  # mov %rdi,%rax        the request block valgrind reads (%rax)
    "31d2"  # xor %edx,%edx          the answer when not under valgrind (%rdx): 0
    "48c1c703"  # rol $3,%rdi        the special-instruction preamble ...
    "48c1c70d"  # rol $13,%rdi
    "48c1c73d"  # rol $61,%rdi
    "48c1c733"  # rol $51,%rdi       ... (%rdi back as it was)
    "4887db"  # xchg %rbx,%rbx       "client request": %rdx = request(%rax)
    "4889d0"  # mov %rdx,%rax
    "c3"  # ret
)
_MACHINES = {"x86_64", "amd64"}

_TOOL_BASE = (ord("C") << 24) | (ord("T") << 16)  # VG_USERREQ_TOOL_BASE('C', 'T'): callgrind
DUMP_STATS_AT = _TOOL_BASE + 3
"""``CALLGRIND_DUMP_STATS_AT(label)``: write the counters out (trigger ``Client Request: label``)
and zero them."""
ZERO_STATS = _TOOL_BASE + 1
"""``CALLGRIND_ZERO_STATS``: zero the counters."""
RUNNING_ON_VALGRIND = 0x1001
"""Valgrind's own request: how many valgrinds the process runs under (0 outside valgrind)."""


class MarkerUnavailable(RuntimeError):
    """This machine cannot issue client requests from Python."""


@functools.cache
def _load() -> Callable[[ctypes.Array[ctypes.c_uint64]], int]:
    """The request function (made once): the machine code on a page mapped writable, then
    executable."""
    machine = platform.machine().lower()
    if machine not in _MACHINES:
        raise MarkerUnavailable(
            f"instruction counts mark their loops with callgrind client requests, written as "
            f"x86-64 machine code; this machine is {machine or 'unknown'!r}"
        )
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    page = libc.mmap(None, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_WRITE, flags, -1, 0)
    if page in (None, ctypes.c_void_p(-1).value):
        raise MarkerUnavailable(f"mmap of one page failed: errno {ctypes.get_errno()}")
    ctypes.memmove(page, _AMD64_REQUEST, len(_AMD64_REQUEST))
    # Never writable and executable at once: hardened kernels refuse such pages.
    if libc.mprotect(page, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
        raise MarkerUnavailable(
            f"mprotect(PROT_EXEC) of the client request's page failed: errno {ctypes.get_errno()}"
        )
    prototype = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint64))
    return prototype(page)  # the page stays mapped for the life of the process


class Request:
    """One client request, ready to issue: its argument block (and label) are built ahead, so
    that issuing it at the edge of a counted loop allocates and converts as little as possible.

    Raises [MarkerUnavailable][] when this machine cannot issue client requests.
    """

    def __init__(self, code: int, label: str | None = None) -> None:
        self._issue = _load()
        self._label = None if label is None else ctypes.create_string_buffer(label.encode())
        arg = 0 if self._label is None else ctypes.addressof(self._label)
        self._block = (ctypes.c_uint64 * 6)(code, arg, 0, 0, 0, 0)

    def __call__(self) -> int:
        """Issue the request: valgrind's answer, or 0 outside valgrind."""
        return self._issue(self._block)


def zero() -> Request:
    """The request that zeroes callgrind's counters (a no-op outside callgrind)."""
    return Request(ZERO_STATS)


def dump(label: str) -> Request:
    """The request that writes callgrind's counters to the next dump, its trigger
    ``Client Request: label``, and zeroes them (a no-op outside callgrind)."""
    return Request(DUMP_STATS_AT, label)
