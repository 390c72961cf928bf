"""A few requests in flight at once, with results taken strictly in ID order.

With 200 ms of latency, one request at a time cannot reach even 300 requests a minute, so a
small pool keeps several GETs in flight while the shared rate limiter paces every attempt.
Results are consumed in the order the IDs were submitted, on the caller's thread, so records
and STATE are written exactly as a serial loop would write them.

The threads are daemons and stop at `close()`: a backoff sleep ends at once, and a request
still in flight gets a few seconds to finish, so that its log lines come before the run's final
error line, but a run that fails never waits long for an API that has stopped answering.
"""

from __future__ import annotations

import queue
import threading
import time
import typing as t
from collections import deque
from concurrent.futures import Future

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType

R = t.TypeVar("R")
_Job: t.TypeAlias = tuple["Future[t.Any]", "Callable[[], t.Any]"] | None


class Cancelled(Exception):  # noqa: N818 - raised inside workers, read as "the job was cancelled"
    """A worker's job was cancelled because the stream stopped."""


class WorkerPool:
    """Daemon threads that run submitted callables; `close()` stops them and drops queued jobs."""

    def __init__(self, size: int, *, name: str) -> None:
        self.stopping = threading.Event()
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
            for n in range(max(1, size))
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, func = job
            if not future.set_running_or_notify_cancel():
                continue
            if self.stopping.is_set():
                future.set_exception(Cancelled())
                continue
            try:
                future.set_result(func())
            except BaseException as error:
                future.set_exception(error)

    def submit(self, func: Callable[[], R]) -> Future[R]:
        """Queue a call; its Future holds the result or the exception."""
        future: Future[R] = Future()
        self._jobs.put((future, func))
        return future

    def interruptible_sleep(self, seconds: float) -> None:
        """Sleep for a retry, but raise Cancelled at once if the pool is closing."""
        if self.stopping.wait(seconds):
            raise Cancelled

    def close(self, grace: float = 5.0) -> None:
        """Stop the workers and wait up to `grace` seconds in all for them to end.

        Queued calls are dropped and running ones stop at their next backoff sleep; only a
        request in flight can hold a worker up.
        """
        self.stopping.set()
        for _ in self._threads:
            self._jobs.put(None)
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _submit(pool: WorkerPool, start: Callable[[str], Callable[[], R]], item: str) -> Future[R]:
    try:
        call = start(item)
    except Exception as error:
        failed: Future[R] = Future()
        failed.set_exception(error)
        return failed
    return pool.submit(call)


def in_order(
    pool: WorkerPool,
    items: Iterable[str],
    start: Callable[[str], Callable[[], R]],
    *,
    ahead: int,
) -> Iterator[tuple[str, Future[R]]]:
    """Keep up to `ahead` calls queued or running; yield them in item order.

    The first call goes out alone: only once it has an answer do the others fan out, so a
    run with wrong keys costs one request, not one per worker.

    Args:
        pool: Runs the calls.
        items: IDs, in the order results are wanted.
        start: Builds the call for one item, on the caller's thread, when it is submitted.
        ahead: How many calls may be queued or running while the caller waits for one.

    Yields:
        (item, future) pairs, in item order.
    """
    pending: deque[tuple[str, Future[R]]] = deque()
    remaining = iter(items)
    exhausted = False
    probe: Future[R] | None = None
    while True:
        limit = ahead if probe is not None and probe.done() else 0
        while not exhausted and len(pending) <= limit:
            item = next(remaining, None)
            if item is None:
                exhausted = True
            else:
                pending.append((item, _submit(pool, start, item)))
                probe = probe or pending[-1][1]
        if not pending:
            return
        yield pending.popleft()
