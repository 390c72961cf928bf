"""`meltano invoke chatra-webhooks serve`: the inbox as the project's utility plugin.

Meltano passes the utility's settings as CHATRA_WEBHOOKS_* variables; here they come from the
environment as a deployment would set them, and the inbox must take them all: the port, the
store and both tokens.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import typing as t

import pytest
import requests

if t.TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.conftest import MeltanoProject

pytestmark = pytest.mark.e2e
INGEST_TOKEN = "e2e-ingest-" + "7" * 32
READ_TOKEN = "e2e-read-" + "8" * 32
START_TIMEOUT = 120


def test_meltano_invoke_serves_with_the_project_settings(
    meltano: MeltanoProject, tmp_path: Path
) -> None:
    store = tmp_path / "inbox" / "events.sqlite"
    env = meltano.environ(
        {
            "CHATRA_WEBHOOKS_INGEST_TOKEN": INGEST_TOKEN,
            "CHATRA_WEBHOOKS_READ_TOKEN": READ_TOKEN,
            "CHATRA_WEBHOOKS_PORT": "0",
            "CHATRA_WEBHOOKS_STORE": f"sqlite:///{store}",
        }
    )
    process = subprocess.Popen(
        meltano.command("invoke", "chatra-webhooks", "serve"),
        cwd=meltano.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def collect(stream: t.TextIO) -> None:
        for line in stream:
            lines.put(line)

    assert process.stdout is not None
    threading.Thread(target=collect, args=(process.stdout,), daemon=True).start()
    try:
        url, seen = "", []
        while not url:
            line = lines.get(timeout=START_TIMEOUT)
            seen.append(line)
            if line.startswith("listening on http://"):
                url = line.removeprefix("listening on ").strip()
        body = {"eventName": "chatStarted", "client": {"id": "e2e-client", "chatId": "e2e-chat"}}
        answer = requests.post(f"{url}/chatra/{INGEST_TOKEN}", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        page = requests.get(
            f"{url}/events",
            headers={"Authorization": f"Bearer {READ_TOKEN}"},
            timeout=10,
        ).json()
        assert [event["body"] for event in page["events"]] == [body]
        assert store.exists()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    output = "".join(seen) + "".join(lines.queue)
    assert INGEST_TOKEN not in output
    assert READ_TOKEN not in output
