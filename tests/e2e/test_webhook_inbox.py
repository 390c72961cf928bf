"""Sandbox webhooks -> inbox (PostgreSQL store) -> `meltano run tap-chatra target-postgres`.

The sandbox plays Chatra: it simulates chats, stores their clients and messages, and posts
their webhooks to a real `chatra-webhooks serve` process. The tap reads the inbox's read API,
or the file `chatra-webhooks export` writes, and fetches the clients and messages the events
name. A run is killed with -9 while it fetches; the next run must lose nothing, and a run
after that must find nothing left to do.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from chatra_sandbox import SandboxServer
    from chatra_sandbox.conversations import Conversation
    from chatra_webhooks.testing import InboxProcess
    from conftest import PostgresDatabase, PostgresServer
    from tests.e2e.conftest import MeltanoProject

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(300)]

# The dev environment's ID files are not part of these runs.
NO_ID_FILES = {
    "TAP_CHATRA_MESSAGE_IDS_FILE": "",
    "TAP_CHATRA_PUSHED_MESSAGE_IDS_FILE": "",
    "TAP_CHATRA_CLIENT_IDS_FILE": "",
}


@pytest.fixture
def inbox_store(postgres_server: PostgresServer) -> Iterator[str]:
    """The inbox's PostgreSQL store: a database of its own, dropped afterwards."""
    with postgres_server.scratch_database("tap_inbox") as name:
        yield postgres_server.url(name)


def rows(database: PostgresDatabase, sql: str) -> list[tuple[Any, ...]]:
    with database.connect() as conn:
        return conn.execute(sql).fetchall()


def check_warehouse(database: PostgresDatabase, schema: str, chats: list[Conversation]) -> None:
    messages = rows(database, f'SELECT key, chat_id, text FROM "{schema}".chat_messages')
    assert len(messages) == len({key for key, _, _ in messages}), "a message landed twice"
    loaded = {(chat_id, text) for _, chat_id, text in messages}
    expected = {(chat.chat_id, m["text"]) for chat in chats for m in chat.messages}
    assert loaded == expected
    assert len(messages) == sum(len(chat.messages) for chat in chats)
    clients = {row[0] for row in rows(database, f'SELECT id FROM "{schema}".clients')}
    assert {chat.client_id for chat in chats} <= clients
    message_ids = {row[0] for row in rows(database, f'SELECT id FROM "{schema}".messages')}
    carried = {m["id"] for chat in chats if chat.style.with_ids for m in chat.messages}
    assert carried <= message_ids


@pytest.mark.parametrize("source", ["inbox", "file"])
def test_simulated_chats_land_once_through_the_inbox_even_after_kill_9(
    meltano: MeltanoProject,
    postgres_database: PostgresDatabase,
    chatra_sandbox_factory: Callable[..., SandboxServer],
    webhook_inbox_factory: Callable[..., InboxProcess],
    inbox_store: str,
    tmp_path: Path,
    source: str,
) -> None:
    inbox = webhook_inbox_factory(inbox_store)
    sandbox = chatra_sandbox_factory(
        seed=11,
        clients=0,
        messages=0,
        pushed_messages=0,
        requests_per_minute=0,
        webhook_url=inbox.ingest_url(),
    )
    chats = sandbox.simulate_chats(6)
    assert all(delivery.ok for delivery in sandbox.webhook_deliveries())
    schema = f"chatra_{uuid.uuid4().hex[:8]}"
    events_file = tmp_path / "events.jsonl"
    source_env = (
        inbox.tap_env()
        if source == "inbox"
        else {
            "TAP_CHATRA_WEBHOOK_EVENTS_FILE": str(events_file),
            "TAP_CHATRA_WEBHOOK_INBOX_URL": "",
        }
    )
    env = {
        **postgres_database.env("TARGET_POSTGRES"),
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        "TAP_CHATRA_API_URL": sandbox.api_url,
        "TAP_CHATRA_API_KEY_PAIR": sandbox.key_pair,
        "TAP_CHATRA_REQUESTS_PER_MINUTE": "0",
        "TAP_CHATRA_MAX_CONCURRENCY": "1",
        **NO_ID_FILES,
        **source_env,
    }
    run = ("run", f"--state-id-suffix={schema}", "tap-chatra", "target-postgres")

    # Slow answers keep the tap fetching long enough to be killed in the middle.
    sandbox.configure(latency_ms=150)
    inbox.export(events_file)
    requests_before = len(sandbox.request_log())
    returncode = meltano.run_killing(
        "tap-chatra", lambda: len(sandbox.request_log()) >= requests_before + 3, *run, env=env
    )
    assert returncode != 0, "meltano run succeeded although its tap was killed"

    sandbox.configure(latency_ms=0)
    chats += sandbox.simulate_chats(2)
    inbox.export(events_file)
    meltano.run(*run, env=env)
    check_warehouse(postgres_database, schema, chats)

    requests_before = len(sandbox.request_log())
    meltano.run(*run, env=env)
    assert sandbox.request_log()[requests_before:] == [], "a run with nothing new made requests"
    check_warehouse(postgres_database, schema, chats)
    [(events,)] = rows(postgres_database, f'SELECT count(*) FROM "{schema}".webhook_events')
    assert events == len(sandbox.webhook_deliveries())
