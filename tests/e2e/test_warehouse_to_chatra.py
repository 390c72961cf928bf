"""`meltano run tap-postgres target-chatra-push`: warehouse rows become Chatra messages once."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from chatra_sandbox import SandboxServer
    from conftest import PostgresDatabase
    from tests.e2e.conftest import MeltanoProject, SandboxSettings

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(300)]

VALID_ROWS = 8


def create_outreach_table(
    database: PostgresDatabase, clients: list[str], rows: int
) -> tuple[str, list[str]]:
    """Create a schema with one table of `rows` valid rows and two invalid ones.

    Returns:
        The schema name and the texts of the valid rows (each unique, so the send log can be
        matched back to rows).
    """
    schema = f"outreach_{uuid.uuid4().hex[:8]}"
    texts = [f"Row {n}: your order has shipped." for n in range(rows)]
    with database.connect() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".welcome (id integer PRIMARY KEY, client_id text, text text)'
        )
        for n, text in enumerate(texts):
            conn.execute(
                f'INSERT INTO "{schema}".welcome VALUES (%s, %s, %s)',
                (n, clients[n % len(clients)], text),
            )
        # Never sent: no client to send to, and no text to send.
        conn.execute(f"INSERT INTO \"{schema}\".welcome VALUES (100, NULL, 'No client')")
        conn.execute(f'INSERT INTO "{schema}".welcome VALUES (101, %s, %s)', (clients[0], ""))
    return schema, texts


def run_env(database: PostgresDatabase, schema: str, target: dict[str, str]) -> dict[str, str]:
    return {
        **database.env("TAP_POSTGRES"),
        "TAP_POSTGRES_FILTER_SCHEMAS": json.dumps([schema]),
        **target,
    }


def sent_texts(sandbox: SandboxServer) -> Counter[str]:
    return Counter(send["body"]["text"] for send in sandbox.sends())


def test_each_valid_row_is_sent_exactly_once(
    meltano: MeltanoProject,
    postgres_database: PostgresDatabase,
    chatra_sandbox_factory: Callable[..., SandboxServer],
    sandbox_settings: SandboxSettings,
) -> None:
    sandbox = chatra_sandbox_factory(
        seed=5, clients=6, messages=4, pushed_messages=2, requests_per_minute=0
    )
    clients = sandbox.ids("clients")
    schema, texts = create_outreach_table(postgres_database, clients, VALID_ROWS)
    env = run_env(postgres_database, schema, sandbox_settings.target(sandbox))

    meltano.run("run", f"--state-id-suffix={schema}", "tap-postgres", "target-chatra-push", env=env)

    assert sent_texts(sandbox) == Counter(texts)
    sends = sandbox.sends()
    assert {s["resource"] for s in sends} == {"pushedMessages"}
    assert {s["body"]["clientId"] for s in sends} <= set(clients)
    report = json.loads(sandbox_settings.report_path.read_text())
    assert report["totals"]["sent"] == VALID_ROWS
    assert report["totals"]["invalid"] == 2
    dead = (sandbox_settings.folder / "chatra-push" / "dead-letter.jsonl").read_text().splitlines()
    assert len(dead) == 2

    meltano.run("run", f"--state-id-suffix={schema}", "tap-postgres", "target-chatra-push", env=env)

    assert sent_texts(sandbox) == Counter(texts), "the second run sent something again"
    report = json.loads(sandbox_settings.report_path.read_text())
    assert report["totals"]["sent"] == 0
    assert report["totals"]["duplicate"] == VALID_ROWS


def test_killed_target_then_rerun_sends_nothing_twice(
    meltano: MeltanoProject,
    postgres_database: PostgresDatabase,
    chatra_sandbox_factory: Callable[..., SandboxServer],
    sandbox_settings: SandboxSettings,
) -> None:
    rows = 30
    # Slow answers keep the target mid-run long enough to be killed between two sends.
    sandbox = chatra_sandbox_factory(
        seed=6, clients=6, messages=4, pushed_messages=2, requests_per_minute=0, latency_ms=150
    )
    schema, texts = create_outreach_table(postgres_database, sandbox.ids("clients"), rows)
    env = run_env(postgres_database, schema, sandbox_settings.target(sandbox))

    returncode = meltano.run_killing(
        "target-chatra-push",
        lambda: len(sandbox.sends()) >= 5,
        *("run", f"--state-id-suffix={schema}", "tap-postgres", "target-chatra-push"),
        env=env,
    )
    assert returncode != 0, "meltano run succeeded although its target was killed"
    sent_before_rerun = sent_texts(sandbox)
    assert 5 <= sum(sent_before_rerun.values()) < rows

    sandbox.configure(latency_ms=0)
    meltano.run("run", f"--state-id-suffix={schema}", "tap-postgres", "target-chatra-push", env=env)

    sent = sent_texts(sandbox)
    assert max(sent.values()) == 1, f"sent twice: {[t for t, n in sent.items() if n > 1]}"
    report = json.loads(sandbox_settings.report_path.read_text())
    unconfirmed = report["totals"]["unconfirmed"]
    # A row whose send was under way at the kill is reported, never sent again blindly.
    assert unconfirmed <= 1
    assert len(sent) + unconfirmed >= rows
    assert set(sent) <= set(texts)
