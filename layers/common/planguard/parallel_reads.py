"""Independent network reads run together: one small thread pool per container.

Each read waits on a network round trip, not on the CPU, so threads overlap the waits. The pool
is made on first use (a function that never overlaps never imports it) and kept across warm
invocations. Only a request's own thread ever waits on a future, never a pool thread, so a busy
pool queues work instead of deadlocking. Every started call is joined before the request
returns: Lambda freezes the container once the handler has answered.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

MAX_WORKERS = 4  # a request overlaps at most two reads; a little room for the local dev server


@functools.cache
def _pool() -> ThreadPoolExecutor:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - on the first overlap only

    return ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="planguard-io")


def start[T](call: Callable[..., T], *args: Any) -> Future[T]:
    """Run ``call(*args)`` in the pool, in a copy of this thread's context (log keys and all)."""
    context = contextvars.copy_context()
    return _pool().submit(context.run, call, *args)


def join(futures: Iterable[Future[Any]]) -> None:
    """Wait until every future is done, whatever it raised (read its result to see that)."""
    from concurrent.futures import wait  # noqa: PLC0415 - loaded by start() already

    wait(list(futures))
