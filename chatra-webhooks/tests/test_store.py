"""The store on SQLite and PostgreSQL: order, duplicates, paging, pruning, schema, and
readers that never miss an event while several writers (replicas) commit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import time
import typing as t

import pytest
import sqlalchemy as sa

from chatra_webhooks import sql_store
from chatra_webhooks.events import parse_body
from chatra_webhooks.schema import EVENTS, INBOX, SCHEMA_VERSION
from chatra_webhooks.settings import normalize_store_url
from chatra_webhooks.sql_store import SqlEventStore
from chatra_webhooks.store import EventRefusedError, Page, StoreError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from chatra_webhooks.events import IncomingEvent


def incoming(number: int, name: str = "chatFragment") -> IncomingEvent:
    body = {"eventName": name, "client": {"id": f"c{number}", "chatId": f"h{number}"}}
    return parse_body(json.dumps(body).encode())


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], SqlEventStore]]:
    """Return a function opening the test's store; every store opened is closed at the end."""
    opened: list[SqlEventStore] = []

    def open_() -> SqlEventStore:
        opened.append(SqlEventStore(normalize_store_url(store_url)))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


def test_append_numbers_events_and_read_returns_them_in_order(
    open_store: Callable[[], SqlEventStore],
) -> None:
    store = open_store()
    seqs = [store.append(incoming(n)).seq for n in range(5)]

    assert seqs == [1, 2, 3, 4, 5]
    events = store.read(0, 10).events
    assert [e.seq for e in events] == seqs
    assert [e.client_id for e in events] == [f"c{n}" for n in range(5)]
    assert events[0].chat_id == "h0"
    assert events[0].event_name == "chatFragment"
    assert events[0].received_at.tzinfo == dt.UTC
    assert abs(events[0].received_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert [e.seq for e in store.read(2, 2).events] == [3, 4]
    assert store.read(5, 10).events == []


def test_a_duplicate_body_keeps_its_first_seq(open_store: Callable[[], SqlEventStore]) -> None:
    store = open_store()
    first = store.append(incoming(1))
    store.append(incoming(2))
    again = store.append(incoming(1))

    assert (again.seq, again.duplicate) == (first.seq, True)
    assert [e.seq for e in store.read(0, 10).events] == [1, 2]
    assert store.append(incoming(3)).seq == 3


def test_duplicates_within_one_batch_are_stored_once(
    open_store: Callable[[], SqlEventStore],
) -> None:
    store = open_store()
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(store.append(incoming(7)).seq))
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [1] * 20
    assert len(store.read(0, 100).events) == 1


def test_data_and_numbering_survive_reopening_and_pruning(
    open_store: Callable[[], SqlEventStore],
) -> None:
    store = open_store()
    for n in range(3):
        store.append(incoming(n))
    store.close()

    reopened = open_store()
    assert [e.seq for e in reopened.read(0, 10).events] == [1, 2, 3]
    reopened.acknowledge("reader", 3)
    assert reopened.prune(dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).deleted == 0
    assert reopened.prune(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).deleted == 3
    assert reopened.read(0, 10).events == []
    # A number is never handed out twice, even after everything was pruned.
    assert reopened.append(incoming(9)).seq == 4
    assert [e.seq for e in reopened.iter_after(0)] == [4]


def test_a_page_says_whether_more_is_waiting(
    open_store: Callable[[], SqlEventStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store()
    for n in range(5):
        store.append(incoming(n))
    assert (store.read(0, 4).last_seq, store.read(0, 4).has_more) == (4, True)
    assert (store.read(0, 5).last_seq, store.read(0, 5).has_more) == (5, False)
    assert store.read(5, 5) == Page([], None, has_more=False)
    # Bodies past the byte cap end the page early, with at least one event in it.
    size = len(incoming(0).body)
    monkeypatch.setattr(sql_store, "PAGE_BYTES", 2 * size)
    page = store.read(0, 100)
    assert ([e.seq for e in page.events], page.has_more) == ([1, 2], True)
    monkeypatch.setattr(sql_store, "PAGE_BYTES", 1)
    assert [e.seq for e in store.read(4, 100).events] == [5]
    assert [e.seq for e in store.iter_after(0)] == [1, 2, 3, 4, 5]


def test_iter_after_reads_everything_a_page_at_a_time(
    open_store: Callable[[], SqlEventStore],
) -> None:
    store = open_store()
    for n in range(12):
        store.append(incoming(n))
    assert [e.seq for e in store.iter_after(3, page_size=5)] == list(range(4, 13))


def test_a_version_1_store_is_upgraded_and_keeps_its_events(
    open_store: Callable[[], SqlEventStore], store_url: str
) -> None:
    store = open_store()
    store.append(incoming(1))
    store.close()
    engine = sa.create_engine(normalize_store_url(store_url))
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE chatra_webhooks_readers")
        conn.execute(sa.update(INBOX).values(schema_version=1))
    engine.dispose()

    upgraded = open_store()
    assert upgraded.readers() == []
    upgraded.acknowledge("tap", 1)
    assert [(r.name, r.acked_seq) for r in upgraded.readers()] == [("tap", 1)]
    assert [e.seq for e in upgraded.read(0, 10).events] == [1]


def test_a_reader_position_moves_both_ways_and_can_be_forgotten(
    open_store: Callable[[], SqlEventStore],
) -> None:
    store = open_store()
    store.acknowledge("a", 5)
    store.acknowledge("a", 3)  # a reader that went back to an older STATE
    store.acknowledge("b", 9)
    positions = store.readers()
    assert [(r.name, r.acked_seq) for r in positions] == [("a", 3), ("b", 9)]
    assert abs(positions[0].acked_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert store.forget_reader("a") is True
    assert store.forget_reader("a") is False
    assert [r.name for r in store.readers()] == ["b"]


def test_a_store_from_a_newer_version_is_refused(
    open_store: Callable[[], SqlEventStore], store_url: str
) -> None:
    open_store().close()
    engine = sa.create_engine(normalize_store_url(store_url))
    with engine.begin() as conn:
        conn.execute(sa.update(INBOX).values(schema_version=SCHEMA_VERSION + 1))
    engine.dispose()

    with pytest.raises(StoreError, match="newer than this chatra-webhooks"):
        open_store()


def test_an_unreachable_store_is_one_clear_error() -> None:
    url = normalize_store_url("postgresql://nobody:secret-password@127.0.0.1:1/none")
    with pytest.raises(StoreError) as caught:
        SqlEventStore(url)
    message = str(caught.value)
    assert message.startswith("cannot open the store")
    assert "secret-password" not in message
    assert "\n" not in message


def test_readers_never_miss_events_committed_by_concurrent_replicas(
    open_store: Callable[[], SqlEventStore],
) -> None:
    """Three stores on one database play three replicas, each with four sending threads;
    a reader pages by seq the whole time, as tap-chatra would. The reader must end with
    every event exactly once, in order: a page that passed a seq still being committed
    would lose that event for ever."""
    replicas = [open_store() for _ in range(3)]
    reader = open_store()
    per_thread, threads_per_replica = 20, 4
    total = per_thread * threads_per_replica * len(replicas)
    seen: list[int] = []
    done = threading.Event()

    def send(replica: SqlEventStore, first: int) -> None:
        for n in range(first, first + per_thread):
            replica.append(incoming(n))

    def read() -> None:
        after = 0
        while True:
            finished = done.is_set()
            page = reader.read(after, 7)
            seen.extend(e.seq for e in page.events)
            after = page.last_seq or after
            if finished and not page.has_more:
                return

    reading = threading.Thread(target=read)
    reading.start()
    senders = [
        threading.Thread(target=send, args=(replica, 10_000 * r + 1_000 * s))
        for r, replica in enumerate(replicas)
        for s in range(threads_per_replica)
    ]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    done.set()
    reading.join(60)

    assert seen == list(range(1, total + 1))


def test_a_page_stops_before_a_seq_whose_transaction_is_open(
    open_store: Callable[[], SqlEventStore], store_url: str
) -> None:
    """A writer that took seq N and has not committed holds back every later writer, so a
    reader sees neither N nor anything after it until N is committed."""
    store = open_store()
    store.append(incoming(0))
    engine = sa.create_engine(normalize_store_url(store_url))
    try:
        with engine.connect() as open_writer:
            open_writer.begin()
            # What a replica does: lock the counter, take the next number, insert.
            open_writer.execute(sa.update(INBOX).values(last_seq=INBOX.c.last_seq + 1))
            other = incoming(1)
            open_writer.execute(
                sa.insert(EVENTS).values(
                    seq=2,
                    received_at=dt.datetime.now(dt.UTC),
                    body=other.body,
                    body_sha256=other.body_sha256,
                )
            )
            later: list[int] = []
            thread = threading.Thread(target=lambda: later.append(store.append(incoming(2)).seq))
            thread.start()
            time.sleep(0.5)
            assert later == []
            assert [e.seq for e in store.read(0, 10).events] == [1]
            open_writer.commit()
        thread.join(20)
    finally:
        engine.dispose()
    assert later == [3]
    assert [e.seq for e in store.read(0, 10).events] == [1, 2, 3]


def test_one_event_the_database_refuses_fails_alone_in_its_batch(
    open_store: Callable[[], SqlEventStore], store_url: str
) -> None:
    """Finding 2: one event the database could not take failed its whole group commit.

    The counter row is held by another transaction while the events queue up, so that they
    all go into one batch; the bad one holds a string no database can encode.
    """
    store = open_store()
    good = [incoming(n) for n in range(40)]
    bad = dataclasses.replace(incoming(99), client_id="c\ud800")
    engine = sa.create_engine(normalize_store_url(store_url))
    try:
        with engine.connect() as holder:
            holder.begin()
            holder.execute(sa.update(INBOX).values(last_seq=INBOX.c.last_seq))
            first = store.append_soon(good[0])
            time.sleep(0.3)
            futures = [store.append_soon(event) for event in good[1:20]]
            refused = store.append_soon(bad)
            futures += [store.append_soon(event) for event in good[20:]]
            holder.commit()
        assert first.result(30).seq == 1
        seqs = [future.result(30).seq for future in futures]
        with pytest.raises(EventRefusedError, match="UnicodeEncodeError") as caught:
            refused.result(30)
    finally:
        engine.dispose()
    assert "\ud800" not in str(caught.value)
    assert sorted(seqs) == list(range(2, 41))
    assert [e.client_id for e in store.iter_after(0)] == [f"c{n}" for n in range(40)]


def test_sqlite_checkpoints_run_on_their_own_thread_not_in_a_commit(tmp_path: Path) -> None:
    """A commit that checkpoints waits for the database file's fsync too, and with it every
    event of its batch: the slowest 1% of requests under load."""
    path = tmp_path / "inbox.sqlite"
    store = SqlEventStore(f"sqlite:///{path}")
    try:
        with store._engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        empty = path.stat().st_size
        for n in range(50):
            store.append(incoming(n))
        # Too few pages for SQLite's own checkpoint (1,000): only the thread moves them.
        deadline = time.monotonic() + 10
        while path.stat().st_size == empty and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size > empty
    finally:
        store.close()
