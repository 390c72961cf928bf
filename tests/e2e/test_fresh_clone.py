"""Every job and plugin of meltano.yml runs in dev and in prod, in a fresh copy of the checkout.

The copy holds the files git tracks and nothing else: no output/ contents, no .env, no
.chatra-push/. So a folder a plugin needs but does not create (target-duckdb's) fails here.
Only the plugin venvs are borrowed from the session's `meltano install` in the repository
(the same meltano.yml, so the same packages): the install itself is tested there.
Each environment keeps its own paths; only what `prod` documents as coming from the
environment is given as variables (keys, URL, ID files, databases), with the sandbox as
Chatra. Every block of every job runs in one `meltano run` per environment.

`dev` also runs pointed at another Chatra, as its comment in meltano.yml says: a fresh clone
has no file a sandbox run would have left, and `dev` must not need one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from typing import TYPE_CHECKING

import duckdb
import pytest

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import MeltanoProject

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from chatra_sandbox import SandboxServer
    from chatra_webhooks.testing import InboxProcess
    from conftest import PostgresDatabase

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(600)]

JOBS = (
    "chatra-to-warehouse",
    "chatra-to-postgres",
    "warehouse-to-chatra",
    "follow-up-missed-chats",
    "follow-up-missed-chats-postgres",
)
# tap-jsonl is in no job (the demo uses it): run on its own, into target-chatra-push.
EXTRA_BLOCKS = ("tap-jsonl", "target-chatra-push")
TABLES = ("messages", "pushed_messages", "clients")


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory: pytest.TempPathFactory, meltano: MeltanoProject) -> Path:
    """The tracked files of the working tree, copied; the installed plugin venvs linked."""
    folder = tmp_path_factory.mktemp("clone") / "repo"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    for name in filter(None, tracked.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    for plugin_type in ("extractors", "loaders", "utilities"):
        (folder / ".meltano").mkdir(exist_ok=True)
        (folder / ".meltano" / plugin_type).symlink_to(meltano.root / ".meltano" / plugin_type)
    return folder


def clone_environ(meltano: MeltanoProject) -> dict[str, str]:
    """The test environment, with the clone's own .meltano/ rather than this worker's."""
    return {k: v for k, v in meltano.base_env.items() if k != "MELTANO_SYS_DIR_ROOT"}


def outreach_rows(database: PostgresDatabase, clients: list[str], environment: str) -> list[str]:
    texts = [f"{environment}: from the warehouse to {client}" for client in clients]
    with database.connect() as conn:
        conn.execute("CREATE SCHEMA outreach")
        conn.execute(
            "CREATE TABLE outreach.welcome (id integer PRIMARY KEY, client_id text, text text)"
        )
        for row_id, (client, text) in enumerate(zip(clients, texts, strict=True)):
            conn.execute("INSERT INTO outreach.welcome VALUES (%s, %s, %s)", (row_id, client, text))
    return texts


def jsonl_rows(folder: Path, clients: list[str], environment: str) -> tuple[Path, list[str]]:
    texts = [f"{environment}: from a JSONL file to {client}" for client in clients]
    path = folder / f"rows-{environment}.jsonl"
    rows = enumerate(zip(clients, texts, strict=True))
    lines = [json.dumps({"id": n, "client_id": client, "text": text}) for n, (client, text) in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, texts


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_every_job_runs_from_a_fresh_clone(
    environment: str,
    fresh_clone: Path,
    meltano: MeltanoProject,
    scratch_postgres_database: PostgresDatabase,
    chatra_sandbox_factory: Callable[..., SandboxServer],
    webhook_inbox_factory: Callable[..., InboxProcess],
    tmp_path: Path,
) -> None:
    sandbox = chatra_sandbox_factory(
        seed=7, clients=4, messages=3, pushed_messages=2, requests_per_minute=0
    )
    clients = sandbox.ids("clients")
    # What the tap loads: the IDs before target-chatra-push adds pushed messages of its own.
    expected = {table: sorted(sandbox.ids(table)) for table in TABLES}
    postgres_texts = outreach_rows(scratch_postgres_database, clients[:2], environment)
    jsonl_path, jsonl_texts = jsonl_rows(tmp_path, clients[2:], environment)
    env = {
        **scratch_postgres_database.env("TAP_POSTGRES"),
        **scratch_postgres_database.env("TARGET_POSTGRES"),
        # The models on PostgreSQL, and the follow-up job reading missed_chats from there.
        **scratch_postgres_database.env("DBT_POSTGRES"),
        **scratch_postgres_database.env("TAP_POSTGRES_MISSED_CHATS"),
        "TAP_JSONL_PATH": str(jsonl_path),
        "TAP_JSONL_STREAM_NAME": "welcome_jsonl",
        "TAP_JSONL_PRIMARY_KEYS": '["id"]',
        # The sandbox listens on a free port, not dev's 8765.
        "TAP_CHATRA_API_URL": sandbox.api_url,
        "TARGET_CHATRA_PUSH_API_URL": sandbox.api_url,
        "TAP_CHATRA_REQUESTS_PER_MINUTE": "0",
        "TARGET_CHATRA_PUSH_REQUESTS_PER_MINUTE": "0",
        "TARGET_CHATRA_FOLLOW_UP_API_URL": sandbox.api_url,
        "TARGET_CHATRA_FOLLOW_UP_REQUESTS_PER_MINUTE": "0",
    }
    # Neither environment names ID files: every record of the sandbox comes from these.
    paths = sandbox.write_id_files(tmp_path / "ids")
    env |= {
        "TAP_CHATRA_MESSAGE_IDS_FILE": str(paths["messages"]),
        "TAP_CHATRA_PUSHED_MESSAGE_IDS_FILE": str(paths["pushed_messages"]),
        "TAP_CHATRA_CLIENT_IDS_FILE": str(paths["clients"]),
    }
    if environment == "dev":
        # dev reads the webhook inbox that `make demo` starts on 8780: here one on a free port.
        env |= webhook_inbox_factory(f"sqlite:///{tmp_path / 'inbox.sqlite'}").tap_env()
    else:
        env |= {
            "TAP_CHATRA_API_KEY_PAIR": sandbox.key_pair,
            "TARGET_CHATRA_PUSH_API_KEY_PAIR": sandbox.key_pair,
            "TARGET_CHATRA_FOLLOW_UP_API_KEY_PAIR": sandbox.key_pair,
        }
    project = MeltanoProject(
        fresh_clone, meltano.env_file, clone_environ(meltano), environment, installs=False
    )
    project.run("run", *JOBS, *EXTRA_BLOCKS, env=env, timeout=540)

    warehouse = fresh_clone / "output" / environment / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        for table in TABLES:
            rows = conn.execute(f"SELECT id FROM chatra.{table}").fetchall()
            assert sorted(row[0] for row in rows) == expected[table]
        # The models were built (no chats without webhooks: nothing to follow up).
        assert conn.execute("SELECT count(*) FROM analytics.missed_chats").fetchone() == (0,)
    assert (fresh_clone / "output" / environment / "missed_chats.jsonl").is_file()
    with scratch_postgres_database.connect() as conn:
        for table in TABLES:
            (count,) = conn.execute(f"SELECT count(*) FROM chatra.{table}").fetchone() or (0,)
            assert count == len(expected[table])
    sent = Counter(send["body"]["text"] for send in sandbox.sends())
    assert sent == Counter(postgres_texts + jsonl_texts)
    ledger_folder = {"dev": "output/dev/chatra-push", "prod": ".chatra-push/prod"}[environment]
    assert (fresh_clone / ledger_folder / "ledger.sqlite").is_file()


def test_dev_runs_from_a_fresh_clone_pointed_at_another_chatra(
    fresh_clone: Path,
    meltano: MeltanoProject,
    chatra_sandbox_factory: Callable[..., SandboxServer],
    tmp_path: Path,
) -> None:
    """Another Chatra (a sandbox that wrote no ID files), with the user's own client IDs."""
    other = chatra_sandbox_factory(seed=11, clients=3, messages=2, requests_per_minute=0)
    own_ids = tmp_path / "my-client-ids.txt"
    own_ids.write_text("\n".join(other.ids("clients")) + "\n", encoding="utf-8")
    env = {
        "TAP_CHATRA_API_URL": other.api_url,
        "TAP_CHATRA_API_KEY_PAIR": other.key_pair,
        "TAP_CHATRA_REQUESTS_PER_MINUTE": "0",
        "TAP_CHATRA_CLIENT_IDS_FILE": str(own_ids),
        "TAP_CHATRA_WEBHOOK_INBOX_URL": "",
    }
    project = MeltanoProject(
        fresh_clone, meltano.env_file, clone_environ(meltano), "dev", installs=False
    )
    result = project.run("invoke", "tap-chatra", env=env)
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    clients = {m["record"]["id"] for m in records if m["type"] == "RECORD"}
    assert clients == set(other.ids("clients"))
