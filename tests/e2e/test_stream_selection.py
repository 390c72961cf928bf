"""Choosing streams with `select:`: a warehouse gets a table for each stream sent, rows or not.

Every stream of tap-chatra is selected by default, and target-duckdb (like target-postgres)
makes a table for each SCHEMA it receives: a run given only message IDs still makes the
other tables, empty. `select: [messages.*]` (meltano.yml's examples, docs/own-project.md)
sends only the messages stream.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import duckdb
import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from chatra_sandbox import SandboxServer
    from tests.e2e.conftest import MeltanoProject, SandboxSettings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ALL_STREAMS = {"webhook_events", "chat_messages", "messages", "pushed_messages", "clients"}


@pytest.mark.parametrize(
    ("select", "tables"),
    [
        pytest.param(None, ALL_STREAMS, id="default-every-stream"),
        pytest.param('["messages.*"]', {"messages"}, id="messages-only"),
        pytest.param(
            '["messages.*", "pushed_messages.*", "clients.*"]',
            {"messages", "pushed_messages", "clients"},
            id="no-webhook-streams",
        ),
    ],
)
def test_a_run_makes_tables_only_for_the_streams_selected(
    meltano: MeltanoProject,
    chatra_sandbox: SandboxServer,
    sandbox_settings: SandboxSettings,
    tmp_path: Path,
    select: str | None,
    tables: set[str],
) -> None:
    env = {
        **sandbox_settings.tap(chatra_sandbox),
        # Only message IDs, as in the run the issue describes.
        "TAP_CHATRA_PUSHED_MESSAGE_IDS_FILE": "",
        "TAP_CHATRA_CLIENT_IDS_FILE": "",
        "TARGET_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": "chatra",
    }
    if select is not None:
        env["TAP_CHATRA__SELECT"] = select
    meltano.run(
        "run", f"--state-id-suffix={uuid.uuid4().hex[:8]}", "tap-chatra", "target-duckdb", env=env
    )
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        found = {
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'chatra'"
            ).fetchall()
        }
        (messages,) = conn.execute("SELECT count(*) FROM chatra.messages").fetchone() or (0,)
    assert found == tables
    assert messages == len(chatra_sandbox.ids("messages"))
