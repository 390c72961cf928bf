"""Chatra -> warehouse -> models -> report -> follow-ups, with the real Meltano, dbt and inbox.

The sandbox plays out days of realistic chats (and a few live ones whose webhooks may carry
no `createdAt`), posting their webhooks to a real inbox. `meltano run chatra-to-warehouse`
(or chatra-to-postgres) loads them and runs the dbt models and their tests, once per engine;
every mart is then compared with what tests/e2e/chat_log_reference.py computes from the
sandbox's own chat log. The report is written from the marts and read back in Chromium. The
follow-up job previews, sends one pushed message per missed chat, and sends nothing again.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from tests.e2e.chat_log_reference import reference_agent_days, reference_chats
from tests.e2e.conftest import BIN

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Browser

    from chatra_sandbox import SandboxServer
    from chatra_webhooks.testing import InboxProcess
    from conftest import PostgresDatabase
    from tests.e2e.chat_log_reference import Chat
    from tests.e2e.conftest import MeltanoProject, SandboxSettings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

HISTORY_END = dt.datetime(2025, 3, 8, 18, 0, tzinfo=dt.UTC)
#: Missed chats are measured up to the end of the history, so the last ones are too recent.
AS_OF = "2025-03-08 18:00:00"
AS_OF_TIME = dt.datetime(2025, 3, 8, 18, 0)  # noqa: DTZ001 - the marts' naive UTC
MISSED_AFTER = dt.timedelta(minutes=30)
FOLLOW_UP_TAG = "chatra-follow-up"
CHAT_COLUMNS = [
    "chat_key", "chat_id", "client_id", "started_at", "ended_at", "messages", "client_messages",
    "agent_messages", "agents", "status", "first_response_seconds", "first_response_agent_id",
    "times_from_receipt",
]  # fmt: skip


@dataclass
class Engine:
    """One warehouse: how the jobs reach it and how a test reads it."""

    name: str
    job: str
    follow_up_job: str
    env: dict[str, str]
    report_args: list[str]
    query: Callable[[str], list[tuple[Any, ...]]]
    source_schema: str = "chatra"
    rows_read_again: list[str] = field(default_factory=list)

    def events(self) -> list[tuple[int, dt.datetime, dict[str, Any]]]:
        rows = self.query(
            f"select seq, received_at, payload from {self.source_schema}.webhook_events"
        )
        return [
            (int(seq), received, payload if isinstance(payload, dict) else json.loads(payload))
            for seq, received, payload in rows
        ]

    def mart(self, table: str, columns: str) -> list[tuple[Any, ...]]:
        return self.query(f"select {columns} from analytics.{table}")

    def records(self, table: str, columns: list[str]) -> list[dict[str, Any]]:
        rows = self.mart(table, ", ".join(columns))
        return [dict(zip(columns, row, strict=True)) for row in rows]


def duckdb_engine(folder: Path) -> Engine:
    path = folder / "warehouse.duckdb"
    export = folder / "missed_chats.jsonl"

    def query(sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(path), read_only=True) as conn:
            return conn.execute(sql).fetchall()

    return Engine(
        name="duckdb",
        job="chatra-to-warehouse",
        follow_up_job="follow-up-missed-chats",
        env={
            "TARGET_DUCKDB_PATH": str(path),
            "DBT_DUCKDB_PATH": str(path),
            "DBT_DUCKDB_MISSED_CHATS_EXPORT": str(export),
            "TAP_MISSED_CHATS_PATH": str(export),
            **dbt_folders("DBT_DUCKDB", folder),
        },
        report_args=["--duckdb", str(path)],
        query=query,
        # tap-jsonl reads a file again only once it changed: a full refresh reads it anyway.
        rows_read_again=["--full-refresh"],
    )


def postgres_engine(database: PostgresDatabase, folder: Path) -> Engine:
    def query(sql: str) -> list[tuple[Any, ...]]:
        with database.connect() as conn:
            return conn.execute(sql).fetchall()

    return Engine(
        name="postgres",
        job="chatra-to-postgres",
        follow_up_job="follow-up-missed-chats-postgres",
        env={
            # No REST messages stream: its table is never made, and the models read it as
            # empty (on PostgreSQL, where a subquery in FROM needs an alias before 16).
            "TAP_CHATRA__SELECT": json.dumps(
                ["webhook_events.*", "chat_messages.*", "pushed_messages.*", "clients.*"]
            ),
            **database.env("TARGET_POSTGRES"),
            **database.env("DBT_POSTGRES"),
            **database.env("TAP_POSTGRES_MISSED_CHATS"),
            **dbt_folders("DBT_POSTGRES", folder),
        },
        report_args=["--postgres", database.server.url(database.name)],
        query=query,
    )


def dbt_folders(prefix: str, folder: Path) -> dict[str, str]:
    """dbt's compiled SQL, results and logs in the test's folder, the models' settings."""
    return {
        f"{prefix}_TARGET_PATH": str(folder / "dbt-target"),
        f"{prefix}_LOG_PATH": str(folder / "dbt-logs"),
        f"{prefix}_AS_OF": AS_OF,
    }


@dataclass
class Traffic:
    sandbox: SandboxServer
    inbox: InboxProcess


@pytest.fixture
def traffic(
    chatra_sandbox_factory: Callable[..., SandboxServer],
    webhook_inbox_factory: Callable[..., InboxProcess],
    tmp_path: Path,
) -> Traffic:
    """Four days of chats, then three live ones, sent to a real inbox."""
    inbox = webhook_inbox_factory(f"sqlite:///{tmp_path / 'inbox.sqlite'}")
    sandbox = chatra_sandbox_factory(
        seed=29, clients=2, messages=2, pushed_messages=1, requests_per_minute=0,
        webhook_url=inbox.ingest_url(),
    )  # fmt: skip
    sandbox.simulate_history(4, 10, end=HISTORY_END)
    sandbox.simulate_chats(3)
    assert all(delivery.ok for delivery in sandbox.webhook_deliveries())
    return Traffic(sandbox, inbox)


def run_env(traffic: Traffic, settings: SandboxSettings, engine: Engine) -> dict[str, str]:
    return {
        **settings.tap(traffic.sandbox),
        **traffic.inbox.tap_env(),
        **engine.env,
        **settings.target(traffic.sandbox, "TARGET_CHATRA_FOLLOW_UP", "follow-up"),
    }


def check_models(engine: Engine, sandbox: SandboxServer) -> list[Chat]:
    """Compare every mart with the reference; return the reference chats."""
    expected = reference_chats(sandbox.conversations(), engine.events())
    by_key = {chat.key: chat for chat in expected}
    assert any(c.status == "unanswered" for c in expected)
    assert len({c.chat_id for c in expected}) < len(expected), "no client came back"

    rows = engine.records("chats", CHAT_COLUMNS)
    assert sorted(row["chat_key"] for row in rows) == sorted(by_key)
    for row in rows:
        chat = by_key[row["chat_key"]]
        assert row == {
            **row,
            "chat_id": chat.chat_id,
            "client_id": chat.client_id,
            "started_at": chat.started_at,
            "ended_at": chat.messages[-1].at,
            "messages": len(chat.messages),
            "client_messages": len(chat.of("client")),
            "agent_messages": len(chat.of("agent")),
            "agents": len({m.agent_id for m in chat.of("agent")}),
            "status": chat.status,
        }
        response = chat.first_response
        if response is None:
            assert row["first_response_seconds"] is None
        else:
            assert row["first_response_seconds"] == pytest.approx(
                chat.first_response_seconds, abs=1e-6
            )
            assert row["first_response_agent_id"] == response.agent_id
    # Some live chats came without createdAt: their times are the inbox's times of receipt.
    live = [c for c in sandbox.conversations() if not c.style.with_created_at]
    assert live, "no chat without createdAt: pick another seed"
    assert sum(bool(row["times_from_receipt"]) for row in rows) == len(live)

    days = reference_agent_days(expected)
    rows = engine.mart(
        "agent_daily",
        "agent_id, activity_date, chats, messages, first_responses, "
        "median_first_response_seconds, p90_first_response_seconds",
    )
    assert {(agent, day) for agent, day, *_ in rows} == set(days)
    for agent, day, chats, messages, firsts, median, p90 in rows:
        want = days[(agent, day)]
        assert (chats, messages, firsts) == (
            want["chats"], want["messages"], want["first_responses"],
        )  # fmt: skip
        for value, wanted in ((median, want["median"]), (p90, want["p90"])):
            assert value == (None if wanted is None else pytest.approx(wanted, abs=1e-3))

    per_client = Counter(chat.client_id for chat in expected)
    unanswered = Counter(chat.client_id for chat in expected if chat.status == "unanswered")
    rows = engine.mart(
        "client_activity", "client_id, chats, unanswered_chats, open_unanswered_chats"
    )
    assert {row[0]: row[1:] for row in rows} == {
        client: (count, unanswered[client], unanswered[client])
        for client, count in per_client.items()
    }
    assert missed_keys(engine) == reference_missed(expected)
    return expected


def reference_missed(chats: list[Chat]) -> set[str]:
    return {
        chat.key
        for chat in chats
        if chat.status == "unanswered" and AS_OF_TIME - chat.started_at > MISSED_AFTER
    }


def missed_keys(engine: Engine) -> set[str]:
    return {row[0] for row in engine.mart("missed_chats", "chat_key")}


def check_report(engine: Engine, browser: Browser, folder: Path) -> None:
    """The page's bars and rows are the marts' figures."""
    page_path = folder / f"report-{engine.name}.html"
    subprocess.run(
        [str(BIN / "chatra-report"), *engine.report_args, "--output", str(page_path)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    per_day: dict[str, Counter[str]] = {}
    for day, status, count in engine.query(
        "select started_on, status, count(*) from analytics.chats group by 1, 2"
    ):
        per_day.setdefault(day.isoformat(), Counter())[status] = count
    agents = {
        agent: str(chats)
        for agent, chats in engine.query(
            "select agent_id, sum(chats) from analytics.agent_daily group by 1"
        )
    }
    page = browser.new_page()
    try:
        page.goto(page_path.as_uri())
        bars = page.eval_on_selector_all(
            "#chats-per-day rect",
            "rs => rs.map(r => [r.dataset.day, r.dataset.answered, r.dataset.unanswered])",
        )
        shown = {day: (answered, unanswered) for day, answered, unanswered in bars}
        assert shown == {
            day: (str(c["answered"]), str(c["unanswered"])) for day, c in per_day.items()
        }
        shown_agents = page.eval_on_selector_all(
            "#agent-load rect", "rs => rs.map(r => [r.dataset.agent, r.dataset.chats])"
        )
        assert dict(shown_agents) == agents
        rows = page.eval_on_selector_all(
            "#missed-chats tbody tr", "rs => rs.map(r => r.dataset.chatKey)"
        )
        assert set(rows) == missed_keys(engine)
    finally:
        page.close()


def follow_up_sends(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return [s["body"] for s in sandbox.sends() if s["body"].get("receivedFrom") == FOLLOW_UP_TAG]


def check_follow_ups(
    meltano: MeltanoProject,
    engine: Engine,
    traffic: Traffic,
    env: dict[str, str],
    suffix: str,
    *,
    preview: bool,
) -> None:
    """Preview (the same code on either engine: checked once), send once per missed chat,
    then send nothing when the same rows come again."""
    missed = {row[0]: row[1] for row in engine.mart("missed_chats", "chat_key, client_id")}
    assert missed
    folder = Path(env["TARGET_CHATRA_FOLLOW_UP_PREVIEW_PATH"]).parent
    run = ("run", f"--state-id-suffix={suffix}")

    if preview:
        dry_run = {**env, "TARGET_CHATRA_FOLLOW_UP_DRY_RUN": "true"}
        meltano.run(*run, engine.follow_up_job, env=dry_run)
        assert follow_up_sends(traffic.sandbox) == []
        lines = (folder / "preview.jsonl").read_text().splitlines()
        assert Counter(json.loads(line)["action"] for line in lines) == {"send": len(missed)}

    meltano.run(*run, engine.follow_up_job, env=env)
    sends = follow_up_sends(traffic.sandbox)
    assert Counter(body["clientId"] for body in sends) == Counter(missed.values())
    assert all(body["text"].startswith("Hi ") and "{{" not in body["text"] for body in sends)

    meltano.run(*run, *engine.rows_read_again, engine.follow_up_job, env=env)
    assert len(follow_up_sends(traffic.sandbox)) == len(sends)
    totals = json.loads((folder / "report.json").read_text())["totals"]
    assert (totals["sent"], totals["duplicate"]) == (0, len(missed))


def test_duckdb_models_report_and_follow_ups_close_the_loop(
    meltano: MeltanoProject,
    traffic: Traffic,
    sandbox_settings: SandboxSettings,
    headless_browser: Browser,
    tmp_path: Path,
) -> None:
    engine = duckdb_engine(tmp_path)
    env = run_env(traffic, sandbox_settings, engine)
    suffix = uuid.uuid4().hex[:8]
    meltano.run("run", f"--state-id-suffix={suffix}", engine.job, env=env)

    expected = check_models(engine, traffic.sandbox)
    check_report(engine, headless_browser, tmp_path)
    exported = (tmp_path / "missed_chats.jsonl").read_text().splitlines()
    assert {json.loads(line)["chat_key"] for line in exported} == missed_keys(engine)
    check_follow_ups(meltano, engine, traffic, env, suffix, preview=True)

    # The loop closes: the next load reads the follow-ups back (their webhooks and their IDs),
    # the missed chats are gone (so the next follow-up run has nothing to send) and the chats
    # themselves are unchanged.
    before = engine.mart("chats", "chat_key, messages, status")
    sent = len(follow_up_sends(traffic.sandbox))
    meltano.run("run", f"--state-id-suffix={suffix}", engine.job, env=env)
    assert missed_keys(engine) == set()
    assert sorted(engine.mart("chats", "chat_key, messages, status")) == sorted(before)
    followed = engine.mart("chats", "chat_key, followed_up_at is not null")
    assert {key for key, done in followed if done} >= reference_missed(expected)
    assert len(follow_up_sends(traffic.sandbox)) == sent


@pytest.mark.postgres
def test_postgres_models_report_and_follow_ups(
    meltano: MeltanoProject,
    traffic: Traffic,
    sandbox_settings: SandboxSettings,
    scratch_postgres_database: PostgresDatabase,
    headless_browser: Browser,
    tmp_path: Path,
) -> None:
    engine = postgres_engine(scratch_postgres_database, tmp_path)
    env = run_env(traffic, sandbox_settings, engine)
    suffix = uuid.uuid4().hex[:8]
    meltano.run("run", f"--state-id-suffix={suffix}", engine.job, env=env)

    assert engine.query("select to_regclass('chatra.messages')") == [(None,)]
    check_models(engine, traffic.sandbox)
    check_report(engine, headless_browser, tmp_path)
    check_follow_ups(meltano, engine, traffic, env, suffix, preview=False)
