"""The group-commit writer: batches, errors, cancelled waiters, close."""

from __future__ import annotations

import threading

import pytest

from chatra_webhooks.store import StoreError
from chatra_webhooks.writer import BatchWriter


def test_items_queued_during_a_write_go_together_in_the_next_batch() -> None:
    gate, writing = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        writing.set()
        gate.wait(10)
        batches.append(items)
        return [item * 10 for item in items]

    writer: BatchWriter[int, int] = BatchWriter(write, max_batch=3, name="test-writer")
    first = writer.submit(1)
    assert writing.wait(10)
    later = [writer.submit(n) for n in range(2, 7)]
    gate.set()
    assert first.result(10) == 10
    assert [future.result(10) for future in later] == [20, 30, 40, 50, 60]
    writer.close()
    assert batches[0] == [1]
    assert all(len(batch) <= 3 for batch in batches)
    assert [item for batch in batches for item in batch] == [1, 2, 3, 4, 5, 6]


def test_a_cancelled_waiter_is_dropped_and_the_writer_goes_on() -> None:
    gate, writing = threading.Event(), threading.Event()
    written: list[int] = []

    def write(items: list[int]) -> list[int]:
        writing.set()
        gate.wait(10)
        written.extend(items)
        return items

    writer: BatchWriter[int, int] = BatchWriter(write, max_batch=10, name="test-writer")
    busy = writer.submit(1)
    assert writing.wait(10)
    gone = writer.submit(2)
    assert gone.cancel()
    gate.set()
    assert busy.result(10) == 1
    assert writer.submit(3).result(10) == 3
    writer.close()
    assert written == [1, 3]


def test_a_failed_write_fails_its_batch_only() -> None:
    def write(items: list[int]) -> list[int]:
        if 2 in items:
            msg = "disk full"
            raise StoreError(msg)
        return items

    writer: BatchWriter[int, int] = BatchWriter(write, max_batch=1, name="test-writer")
    with pytest.raises(StoreError, match="disk full"):
        writer.submit(2).result(10)
    assert writer.submit(3).result(10) == 3
    writer.close()
    with pytest.raises(StoreError, match="closed"):
        writer.submit(4)


def test_an_item_whose_result_is_an_error_fails_alone() -> None:
    def write(items: list[int]) -> list[int | Exception]:
        return [StoreError(f"refused {item}") if item == 2 else item for item in items]

    writer: BatchWriter[int, int] = BatchWriter(write, max_batch=10, name="test-writer")
    futures = [writer.submit(n) for n in range(4)]
    with pytest.raises(StoreError, match="refused 2"):
        futures[2].result(10)
    assert [futures[n].result(10) for n in (0, 1, 3)] == [0, 1, 3]
    writer.close()
