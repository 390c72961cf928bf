"""`make demo`: both directions of the project on this machine, against the local sandbox.

1. Installs the Meltano plugins the demo uses (once).
2. Starts chatra-webhooks, the webhook inbox, and chatra-sandbox, a local stand-in for the
   Chatra API, with seeded data and files listing the IDs of its records (Chatra has no list
   endpoint: a sync starts from IDs). The sandbox also plays out a week of chats (agents,
   response delays, unanswered chats), posting their webhooks to the inbox as Chatra would.
3. `meltano run chatra-to-warehouse` (tap-chatra -> DuckDB, then the dbt models and their
   tests), then shows what landed in DuckDB, and the conversations the webhooks carried.
4. Reverse ETL: turns a few warehouse rows into a JSONL file, which the `tap-jsonl` extractor
   reads into `target-chatra-push`: first as a dry run, then for real, then once more to
   show that nothing is sent twice (the sandbox counts every message it receives).
5. Reads back the messages just sent, with tap-chatra, from the IDs the target recorded.
6. Previews the follow-ups of the missed chats (`follow-up-missed-chats` as a dry run).
7. Writes the report page of the models (`chatra-report`) and prints its path.

Everything it writes goes to output/demo/ (replaced on every run): the DuckDB file, the
target's ledger, dead-letter file, report and preview and report pages, Meltano's state, and a
log of every command.
The sandbox is stopped at the end, also when a step fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEMO = ROOT / "output" / "demo"
LOGS = DEMO / "logs"
WAREHOUSE = DEMO / "warehouse.duckdb"
OUTREACH_FILE = DEMO / "outreach" / "welcome_back.jsonl"
PUSH_DIR = DEMO / "chatra-push"
#: The plugins the demo runs, and the executable that shows each one is installed. The
#: follow-up job's tap-missed-chats and target-chatra-follow-up inherit these venvs.
PLUGINS = {
    "tap-chatra": "tap-chatra",
    "target-duckdb": "target-duckdb",
    "tap-jsonl": "tap-jsonl",
    "target-chatra-push": "target-chatra-push",
    "dbt-duckdb": "dbt",
}
# Both plugins pace themselves to the sandbox's limit, as they would to Chatra's 60 a minute.
REQUESTS_PER_MINUTE = 600
#: Days of chats the sandbox plays out, ending now, posting Chatra's webhooks to the inbox.
HISTORY_DAYS = 7
CHATS_PER_DAY = 20
FOLLOW_UP_DIR = DEMO / "follow-up"
REPORT_PAGE = DEMO / "report.html"
TEXT_TEMPLATE = (
    "Hi {{ first_name }}, thanks for stopping by from {{ city }}! "
    "Reply here if there is anything we can help with."
)


@dataclass(frozen=True)
class InboxTokens:
    """The demo inbox's tokens: the one in the URL the sandbox posts to, and the tap's."""

    ingest: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    read: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)


class DemoError(Exception):
    """A step failed; the message says which and where its log is."""


def step(text: str) -> None:
    """Print a step heading."""
    print(f"\n==> {text}", flush=True)


def info(text: str) -> None:
    """Print an indented progress line."""
    print(f"    {text}", flush=True)


def isolated_environ() -> dict[str, str]:
    """This process's environment without the plugin settings a shell may have exported.

    MELTANO_PYTHON stays: it picks the interpreter of the plugin venvs (see README.md).
    """
    prefixes = (
        "MELTANO_", "TAP_CHATRA_", "TARGET_CHATRA_PUSH_", "TARGET_DUCKDB_", "TAP_JSONL_",
        "DBT_", "CHATRA_ANALYTICS_", "TAP_MISSED_CHATS_", "TARGET_CHATRA_FOLLOW_UP_",
    )  # fmt: skip
    return {
        k: v for k, v in os.environ.items() if k == "MELTANO_PYTHON" or not k.startswith(prefixes)
    }


def run_logged(name: str, command: Sequence[str], env: dict[str, str], shown: str) -> None:
    """Run `command` in the repository root with its output in logs/<name>.log.

    `shown` is how the command is named if it fails.

    Raises:
        DemoError: If the command fails; the error shows the end of its log.
    """
    log_path = LOGS / f"{name}.log"
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        result = subprocess.run(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(encoding="utf-8").splitlines()[-25:])
        msg = f"`{shown}` failed (exit {result.returncode}):\n{tail}\n"
        msg += f"Full log: {log_path.relative_to(ROOT)}"
        raise DemoError(msg)
    info(f"done in {time.monotonic() - started:.1f} s (log: {log_path.relative_to(ROOT)})")


def meltano(name: str, *args: str, env: dict[str, str]) -> None:
    """Run `meltano ARGS` in the dev environment, ignoring any .env with real keys."""
    empty_env_file = DEMO / "empty.env"
    empty_env_file.touch()
    command = [str(BIN / "meltano"), "--environment=dev", f"--env-file={empty_env_file}", *args]
    run_logged(name, command, env, shown=" ".join(["meltano", *args]))


@contextmanager
def service(name: str, command: Sequence[str], env: dict[str, str] | None = None) -> Iterator[str]:
    """Start a local service that prints `listening on URL`; yield the URL; always stop it.

    Raises:
        DemoError: If it does not start within 30 seconds.
    """
    log_path = LOGS / f"{name}.log"
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_log(log_path, "listening on ", process, what=f"{name} did not start")
        text = log_path.read_text(encoding="utf-8")
        url = text.split("listening on ", 1)[1].split()[0]
        info(f"{name} is listening on {url} (log: {log_path.relative_to(ROOT)})")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        info(f"{name} stopped")


def wait_for_log(
    log_path: Path, marker: str, process: subprocess.Popen[bytes] | None = None, *, what: str
) -> None:
    """Wait up to 30 seconds for `marker` in a service's log.

    Raises:
        DemoError: If it does not appear in time, or the service ends first.
    """
    deadline = time.monotonic() + 30
    while marker not in (text := log_path.read_text(encoding="utf-8")):
        if (process and process.poll() is not None) or time.monotonic() > deadline:
            msg = f"{what}:\n{text}"
            raise DemoError(msg)
        time.sleep(0.1)


@contextmanager
def inbox(tokens: InboxTokens) -> Iterator[str]:
    """Start chatra-webhooks, the webhook inbox, on a free port with a SQLite store."""
    command = [
        str(BIN / "chatra-webhooks"), "serve", "--port", "0",
        "--store", f"sqlite:///{DEMO / 'inbox.sqlite'}",
    ]  # fmt: skip
    env = {
        **os.environ,
        "CHATRA_WEBHOOKS_INGEST_TOKEN": tokens.ingest,
        "CHATRA_WEBHOOKS_READ_TOKEN": tokens.read,
    }
    with service("chatra-webhooks", command, env) as url:
        yield url


@contextmanager
def sandbox(ids_dir: Path, webhook_url: str) -> Iterator[str]:
    """Start chatra-sandbox on a free port, posting its webhooks to `webhook_url`."""
    command = [
        str(BIN / "chatra-sandbox"), "--port", "0", "--seed", "42",
        "--clients", "12", "--messages", "30", "--pushed-messages", "8",
        "--requests-per-minute", str(REQUESTS_PER_MINUTE), "--ids-dir", str(ids_dir),
        "--webhook-url", webhook_url,
        "--history-days", str(HISTORY_DAYS), "--chats-per-day", str(CHATS_PER_DAY),
    ]  # fmt: skip
    with service("chatra-sandbox", command) as url:
        log_path = LOGS / "chatra-sandbox.log"
        wait_for_log(log_path, "chatra-sandbox simulated", what="the simulated chats did not end")
        done = next(line for line in log_path.read_text(encoding="utf-8").splitlines()
                    if "chatra-sandbox simulated" in line)  # fmt: skip
        info(done.removeprefix("chatra-sandbox ").replace("webhooks", "webhooks to the inbox"))
        yield url


def sandbox_sends(url: str) -> int:
    """How many messages the sandbox has received (its admin endpoint, no keys needed)."""
    with urllib.request.urlopen(f"{url}/_sandbox/sends", timeout=10) as response:  # noqa: S310 - our own http://127.0.0.1 URL
        sends: list[Any] = json.load(response)
    return len(sends)


def demo_env(url: str, ids_dir: Path, inbox_url: str, tokens: InboxTokens) -> dict[str, str]:
    """Settings, as variables, that point every plugin at the sandbox, the inbox and output/."""
    api_url = f"{url}/api"
    return {
        "TAP_CHATRA_WEBHOOK_INBOX_URL": inbox_url,
        "TAP_CHATRA_WEBHOOK_INBOX_TOKEN": tokens.read,
        **isolated_environ(),
        # A state database of the demo's own, so every demo run starts from scratch.
        "MELTANO_DATABASE_URI": f"sqlite:///{DEMO / 'meltano.db'}",
        "TAP_CHATRA_API_URL": api_url,
        "TAP_CHATRA_REQUESTS_PER_MINUTE": str(REQUESTS_PER_MINUTE),
        "TAP_CHATRA_MESSAGE_IDS_FILE": str(ids_dir / "messages.txt"),
        "TAP_CHATRA_PUSHED_MESSAGE_IDS_FILE": str(ids_dir / "pushed_messages.txt"),
        "TAP_CHATRA_CLIENT_IDS_FILE": str(ids_dir / "clients.txt"),
        "TARGET_DUCKDB_PATH": str(WAREHOUSE),
        "TAP_JSONL_PATH": str(OUTREACH_FILE),
        "TAP_JSONL_STREAM_NAME": "welcome_back",
        "TAP_JSONL_PRIMARY_KEYS": '["id"]',
        "TARGET_CHATRA_PUSH_API_URL": api_url,
        "TARGET_CHATRA_PUSH_REQUESTS_PER_MINUTE": str(REQUESTS_PER_MINUTE),
        "TARGET_CHATRA_PUSH_TEXT_TEMPLATE": TEXT_TEMPLATE,
        "TARGET_CHATRA_PUSH_LEDGER_PATH": str(PUSH_DIR / "ledger.sqlite"),
        "TARGET_CHATRA_PUSH_DEAD_LETTER_PATH": str(PUSH_DIR / "dead-letter.jsonl"),
        "TARGET_CHATRA_PUSH_PREVIEW_PATH": str(PUSH_DIR / "preview.jsonl"),
        "TARGET_CHATRA_PUSH_REPORT_PATH": str(PUSH_DIR / "report.json"),
        "TARGET_CHATRA_PUSH_REPORT_HTML_PATH": str(PUSH_DIR / "report.html"),
        "TARGET_CHATRA_PUSH_SENT_IDS_PATH": str(PUSH_DIR / "sent-ids.txt"),
        # The models, in the demo's DuckDB file; dbt's own files in output/demo/dbt/.
        "DBT_DUCKDB_PATH": str(WAREHOUSE),
        "DBT_DUCKDB_TARGET_PATH": str(DEMO / "dbt" / "target"),
        "DBT_DUCKDB_LOG_PATH": str(DEMO / "dbt" / "logs"),
        "DBT_DUCKDB_MISSED_CHATS_EXPORT": str(DEMO / "missed_chats.jsonl"),
        "TAP_MISSED_CHATS_PATH": str(DEMO / "missed_chats.jsonl"),
        "TARGET_CHATRA_FOLLOW_UP_API_URL": api_url,
        "TARGET_CHATRA_FOLLOW_UP_REQUESTS_PER_MINUTE": str(REQUESTS_PER_MINUTE),
        "TARGET_CHATRA_FOLLOW_UP_LEDGER_PATH": str(FOLLOW_UP_DIR / "ledger.sqlite"),
        "TARGET_CHATRA_FOLLOW_UP_DEAD_LETTER_PATH": str(FOLLOW_UP_DIR / "dead-letter.jsonl"),
        "TARGET_CHATRA_FOLLOW_UP_PREVIEW_PATH": str(FOLLOW_UP_DIR / "preview.jsonl"),
        "TARGET_CHATRA_FOLLOW_UP_REPORT_PATH": str(FOLLOW_UP_DIR / "report.json"),
        "TARGET_CHATRA_FOLLOW_UP_SENT_IDS_PATH": str(FOLLOW_UP_DIR / "sent-ids.txt"),
    }


def query(sql: str, *params: object) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `sql` on the demo warehouse (read-only); return column names and rows."""
    with duckdb.connect(str(WAREHOUSE), read_only=True) as conn:
        cursor = conn.execute(sql, list(params))
        columns = [d[0] for d in cursor.description]
        return columns, cursor.fetchall()


def print_table(columns: list[str], rows: list[tuple[Any, ...]], width: int = 42) -> None:
    """Print rows as an aligned text table, cutting long values."""
    texts = [[str(value).replace("\n", " ") for value in row] for row in rows]
    cells = [[t if len(t) <= width else t[: width - 1] + "…" for t in row] for row in texts]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    for line in (columns, ["-" * w for w in widths], *cells):
        info("  ".join(value.ljust(w) for value, w in zip(line, widths, strict=True)))


def show_warehouse() -> None:
    """Print the row count of each table, then a few messages and clients."""
    _, tables = query(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'chatra' ORDER BY table_name"
    )
    for (table,) in tables:
        # The table names come from the warehouse's own catalog.
        _, ((count,),) = query(f"SELECT count(*) FROM chatra.{table}")  # noqa: S608
        info(f"chatra.{table}: {count} rows")
    info("")
    print_table(*query("SELECT id, type, created_at, text FROM chatra.messages LIMIT 4"))
    info("")
    clients = (
        "SELECT id, displayedname, json_extract_string(location, '$.city') AS city "
        "FROM chatra.clients LIMIT 4"
    )
    print_table(*query(clients))


def show_conversations() -> None:
    """Print the simulated chats as the webhooks delivered them: chat_messages with their text."""
    step("Conversations from the webhook inbox: chatra.chat_messages")
    _, chats = query("SELECT DISTINCT chat_id FROM chatra.chat_messages ORDER BY chat_id LIMIT 2")
    for (chat_id,) in chats:
        conversation = (
            "SELECT type, coalesce(agent_name, '') AS agent, created_at, text "
            "FROM chatra.chat_messages WHERE chat_id = ? ORDER BY seq, created_at"
        )
        info(f"chat {chat_id}:")
        print_table(*query(conversation, chat_id), width=60)
        info("")


def write_outreach_rows() -> int:
    """Write the rows to send: five clients from the warehouse, plus one row without a client.

    Returns:
        The number of valid rows.
    """
    _, rows = query(
        "SELECT id, split_part(coalesce(name, displayedname), ' ', 1), "
        "json_extract_string(location, '$.city') "
        "FROM chatra.clients WHERE name IS NOT NULL ORDER BY id LIMIT 5"
    )
    records = [
        {"id": f"welcome-back:{client}", "client_id": client, "first_name": first, "city": city}
        for client, first, city in rows
    ]
    # Never sent: there is no client to send it to. It ends up in the dead-letter file.
    nobody = {"id": "welcome-back:nobody", "client_id": None, "first_name": "No", "city": "-"}
    records.append(nobody)
    OUTREACH_FILE.parent.mkdir(parents=True, exist_ok=True)
    OUTREACH_FILE.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    info(f"{len(records)} rows in {OUTREACH_FILE.relative_to(ROOT)}, one without a client ID")
    return len(rows)


def print_report() -> None:
    """Print target-chatra-push's end-of-run summary (its report file)."""
    report = json.loads((PUSH_DIR / "report.json").read_text(encoding="utf-8"))
    for stream, counts in report["streams"].items():
        shown = ", ".join(f"{k} {v}" for k, v in counts.items() if isinstance(v, int) and v)
        info(f"target-chatra-push summary, stream {stream}: {shown or 'nothing to do'}")


def show_models() -> None:
    """Print what the models found: per status, per agent, and the missed chats."""
    step("The models (dbt): analytics.chats, agent_daily, client_activity, missed_chats")
    print_table(*query(
        "SELECT status, count(*) AS chats, round(median(first_response_seconds)) AS median_s "
        "FROM analytics.chats GROUP BY status ORDER BY status"
    ))  # fmt: skip
    info("")
    print_table(*query(
        "SELECT agent_name, sum(chats) AS chats, sum(messages) AS messages, "
        "round(median(median_first_response_seconds)) AS daily_median_s "
        "FROM analytics.agent_daily GROUP BY agent_name ORDER BY chats DESC"
    ))  # fmt: skip
    info("")
    print_table(*query(
        "SELECT client_name, started_at, round(waited_minutes) AS waited_min, last_client_text "
        "FROM analytics.missed_chats ORDER BY waited_minutes DESC LIMIT 5"
    ), width=50)  # fmt: skip


def preview_follow_ups(env: dict[str, str]) -> None:
    """Dry-run the follow-up job: one pushed message per missed chat, previewed, not sent."""
    step("Follow-ups of missed chats, as a dry run: meltano run follow-up-missed-chats")
    dry_env = {**env, "TARGET_CHATRA_FOLLOW_UP_DRY_RUN": "true"}
    meltano("follow-up-dry-run", "run", "follow-up-missed-chats", env=dry_env)
    preview = FOLLOW_UP_DIR / "preview.jsonl"
    rows = preview.read_text(encoding="utf-8").splitlines() if preview.is_file() else []
    info(f"{len(rows)} follow-up(s) would go out, one per missed chat; nothing was sent")
    info(f"preview page: {FOLLOW_UP_DIR / 'preview.html'}")
    info("to send them: meltano run follow-up-missed-chats (a second run sends nothing)")


def write_report_page() -> None:
    """Write the report page of the models with chatra-report, and print its path."""
    step("The report page: chatra-report")
    command = [str(BIN / "chatra-report"), "--duckdb", str(WAREHOUSE), "--output", str(REPORT_PAGE)]
    run_logged("report", command, isolated_environ(), shown="chatra-report")
    info(f"report page, to open in a browser: {REPORT_PAGE}")


def install_plugins(env: dict[str, str]) -> None:
    """`meltano install` the demo's plugins, unless each already has its venv."""
    venvs = [next(iter(ROOT.glob(f".meltano/*/{name}/venv/bin/{exe}")), None)
             for name, exe in PLUGINS.items()]  # fmt: skip
    if all(venvs):
        info("already installed (Meltano reinstalls a plugin by itself if its pip_url changes)")
        return
    meltano("install", "install", *PLUGINS, env=env)


def warehouse_to_chatra(env: dict[str, str], url: str) -> None:
    """Send a few warehouse rows as messages: a dry run, the real run, then a rerun."""
    step("Warehouse -> Chatra: rows for a 'welcome back' message")
    valid = write_outreach_rows()

    step("Dry run: meltano run tap-jsonl target-chatra-push, with dry_run=true")
    dry_env = {**env, "TARGET_CHATRA_PUSH_DRY_RUN": "true"}
    meltano("push-dry-run", "run", "tap-jsonl", "target-chatra-push", env=dry_env)
    print_report()
    preview = (PUSH_DIR / "preview.jsonl").read_text(encoding="utf-8").splitlines()
    info(f"preview ({PUSH_DIR.relative_to(ROOT)}/preview.jsonl), first line:")
    info(f"  {preview[0][:150]}…")
    info(f"preview page, to open in a browser: {PUSH_DIR / 'preview.html'}")
    info(f"messages received by the sandbox: {sandbox_sends(url)}")

    step("Sending for real: meltano run tap-jsonl target-chatra-push")
    meltano("push", "run", "tap-jsonl", "target-chatra-push", env=env)
    print_report()
    dead = (PUSH_DIR / "dead-letter.jsonl").read_text(encoding="utf-8").splitlines()
    info(f"dead-letter file: {len(dead)} row(s), reason: {json.loads(dead[0])['reason']}")
    info(f"report page: {PUSH_DIR / 'report.html'}")
    info(f"messages received by the sandbox: {sandbox_sends(url)} (expected {valid})")

    step("Again, re-reading every row (--full-refresh): the ledger sends nothing twice")
    again_page = PUSH_DIR / "report-again.html"
    again_env = {**env, "TARGET_CHATRA_PUSH_REPORT_HTML_PATH": str(again_page)}
    meltano("push-again", "run", "--full-refresh", "tap-jsonl", "target-chatra-push",
            env=again_env)  # fmt: skip
    print_report()
    info(f"messages received by the sandbox: {sandbox_sends(url)} (still {valid})")
    info(f"report page of this run: {again_page}")


def read_back(env: dict[str, str]) -> None:
    """Load the messages just sent into the warehouse, from the IDs the target recorded."""
    step("Reading back what was sent: tap-chatra with the target's sent-ID file")
    sent_ids = str(PUSH_DIR / "sent-ids.txt")
    meltano("read-back", "run", "tap-chatra", "target-duckdb",
            env={**env, "TAP_CHATRA_PUSHED_MESSAGE_IDS_FILE": sent_ids})  # fmt: skip
    sent = (
        "SELECT id, clientid, receivedfrom, text FROM chatra.pushed_messages "
        "WHERE receivedfrom = 'target-chatra-push' ORDER BY id"
    )
    print_table(*query(sent))


def run_demo() -> None:
    """All the steps, in order."""
    started = time.monotonic()
    ids_dir = DEMO / "ids"
    step("Installing the Meltano plugins: " + ", ".join(PLUGINS))
    state_db = f"sqlite:///{DEMO / 'meltano.db'}"
    install_plugins({**isolated_environ(), "MELTANO_DATABASE_URI": state_db})
    after_install = time.monotonic()

    step("Starting chatra-webhooks, the webhook inbox, and chatra-sandbox, a local Chatra API")
    info(f"the sandbox has seeded data, and plays out {HISTORY_DAYS} days of chats: it posts")
    info("their webhooks to the inbox, as Chatra would (chatStarted, chatFragment, ...)")
    tokens = InboxTokens()
    with inbox(tokens) as inbox_url, sandbox(ids_dir, f"{inbox_url}/chatra/{tokens.ingest}") as url:
        env = demo_env(url, ids_dir, inbox_url, tokens)
        for path in sorted(ids_dir.glob("*.txt")):
            count = len(path.read_text(encoding="utf-8").splitlines())
            info(f"{count} IDs in {path.relative_to(ROOT)}")

        step("Chatra -> warehouse: meltano run chatra-to-warehouse (tap, DuckDB, dbt build)")
        meltano("chatra-to-warehouse", "run", "chatra-to-warehouse", env=env)
        show_warehouse()
        show_conversations()
        show_models()
        warehouse_to_chatra(env, url)
        read_back(env)
        preview_follow_ups(env)
        write_report_page()

    now = time.monotonic()
    step(f"Done in {now - started:.0f} s ({now - after_install:.0f} s after installs).")
    info(f"Everything is in {DEMO.relative_to(ROOT)}/. To explore the warehouse:")
    connect = f"duckdb.connect('{WAREHOUSE.relative_to(ROOT)}', read_only=True)"
    info(f".venv/bin/python -c \"import duckdb; {connect}.sql('FROM analytics.chats').show()\"")
    info(f"The report page, to open in a browser: {REPORT_PAGE}")


def main() -> int:
    """Run the demo; on failure print what failed and exit 1."""
    shutil.rmtree(DEMO, ignore_errors=True)
    LOGS.mkdir(parents=True)
    try:
        run_demo()
    except DemoError as exc:
        print(f"\nDemo failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nDemo interrupted.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
