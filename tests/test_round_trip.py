"""The pair together: the tap reads back, from the target's sent-ID file, what the target sent."""

from __future__ import annotations

import io
import json
import typing as t
from contextlib import redirect_stdout

from tap_chatra.tap import TapChatra
from target_chatra_push.target import TargetChatraPush

if t.TYPE_CHECKING:
    from pathlib import Path

    from chatra_sandbox import SandboxServer


def _singer_rows(clients: list[str]) -> str:
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "client_id": {"type": "string"},
            "text": {"type": "string"},
        },
    }
    messages: list[dict[str, t.Any]] = [
        {"type": "SCHEMA", "stream": "outreach", "schema": schema, "key_properties": ["id"]}
    ]
    for n, client in enumerate(clients):
        row = {"id": n, "client_id": client, "text": f"Row {n}: your order has shipped."}
        messages.append({"type": "RECORD", "stream": "outreach", "record": row})
    return "".join(json.dumps(message) + "\n" for message in messages)


def test_the_tap_reads_back_what_the_target_sent(
    chatra_sandbox: SandboxServer, tmp_path: Path
) -> None:
    keys = {"api_key_pair": chatra_sandbox.key_pair, "api_url": chatra_sandbox.api_url}
    sent_ids = tmp_path / "sent-ids.txt"
    target = TargetChatraPush(
        config={
            **keys,
            "requests_per_minute": 0,
            "ledger_path": str(tmp_path / "ledger.sqlite"),
            "dead_letter_path": str(tmp_path / "dead-letter.jsonl"),
            "sent_ids_path": str(sent_ids),
        }
    )
    with redirect_stdout(io.StringIO()):
        target.listen(file_input=io.StringIO(_singer_rows(chatra_sandbox.ids("clients")[:4])))
    sends = chatra_sandbox.sends()
    assert len(sends) == 4

    tap = TapChatra(
        config={
            **keys,
            "requests_per_minute": 0,
            "pushed_message_ids_file": str(sent_ids),
            "fetch_message_clients": False,
        }
    )
    out = io.StringIO()
    with redirect_stdout(out):
        tap.sync_all()
    records = [
        message["record"]
        for message in map(json.loads, out.getvalue().splitlines())
        if message["type"] == "RECORD" and message["stream"] == "pushed_messages"
    ]
    assert [(r["id"], r["clientId"], r["text"]) for r in records] == [
        (s["id"], s["body"]["clientId"], s["body"]["text"]) for s in sends
    ]
    assert {r["receivedFrom"] for r in records} == {"target-chatra-push"}
