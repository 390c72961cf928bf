"""Group commit: one thread writes whatever has queued up in one transaction.

Every event must be committed before its 200, and a commit costs an fsync (SQLite) or a
round trip and a WAL flush (PostgreSQL). Writing the events that arrived while the previous
commit ran in one transaction keeps the cost per event low under load, and a single writer
per process keeps SQLite's one-writer rule without lock waits.
"""

from __future__ import annotations

import queue
import threading
import typing as t
from concurrent.futures import Future

from chatra_webhooks.store import StoreError

if t.TYPE_CHECKING:
    from collections.abc import Callable

Item = t.TypeVar("Item")
Result = t.TypeVar("Result")


class BatchWriter(t.Generic[Item, Result]):
    """Runs `write(items) -> results` on its own thread, for items queued by any thread.

    Args:
        write: Writes a batch; returns one result per item, in order: what the item's future
            resolves to, or the exception it raises (one item can fail alone).
        max_batch: Most items in one batch.
        name: Name of the thread.
    """

    def __init__(
        self,
        write: Callable[[list[Item]], list[Result | Exception]],
        *,
        max_batch: int,
        name: str,
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Item, Future[Result]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Item) -> Future[Result]:
        """Queue `item`; the future holds its result, its error, or what `write` raised.

        Raises:
            StoreError: If the writer is closed.
        """
        future: Future[Result] = Future()
        with self._lock:
            if self._closed:
                msg = "the store is closed"
                raise StoreError(msg)
            self._queue.put((item, future))
        return future

    def _next_batch(self) -> tuple[list[tuple[Item, Future[Result]]], bool]:
        """The items queued now (waiting for the first), and whether close() was called.

        An item whose future was cancelled (its request went away) is dropped; the others'
        futures are marked running, so a cancel from now on cannot break `set_result`.
        """
        batch: list[tuple[Item, Future[Result]]] = []
        queued = self._queue.get()
        while queued is not None:
            if queued[1].set_running_or_notify_cancel():
                batch.append(queued)
            if len(batch) >= self._max_batch:
                return batch, False
            try:
                queued = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _run(self) -> None:
        closing = False
        while not closing:
            batch, closing = self._next_batch()
            if not batch:
                continue
            try:
                results = self._write([item for item, _ in batch])
            except Exception as exc:  # every waiter gets the error; the writer goes on
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def close(self) -> None:
        """Write what is queued, then stop the thread; later submits raise `StoreError`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()
