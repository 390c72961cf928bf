"""No body can halt ingestion: poison is refused or repaired at the door, rows already stored
are served safely, and one bad event in a group commit fails alone (issue 23, findings 1, 2
and the export of finding 7)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import typing as t
import uuid
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from chatra_webhooks.schema import EVENTS, INBOX
from chatra_webhooks.settings import normalize_store_url

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from subprocess import CompletedProcess

    from chatra_webhooks.testing import InboxProcess

# A message text cut inside an emoji, as JavaScript's JSON.stringify writes it.
CUT_EMOJI = '"Hi \\ud83d"'


def body_text(marker: str, extra: str = "", message: str = '"Hello"') -> str:
    """A webhook body as JSON text (to hold what json.dumps would never write)."""
    return (
        f'{{"eventName": "chatFragment", "client": {{"id": "client-{marker}"}},'
        f' "messages": [{{"type": "client", "message": {message}}}]{extra}}}'
    )


def test_a_number_beyond_json_range_is_refused_at_the_door(inbox: InboxProcess) -> None:
    marker = uuid.uuid4().hex
    before = inbox.metric('chatra_webhooks_rejected_total{reason="number_out_of_range"}')

    answer = inbox.post(body_text(marker, ', "n": 1e999'))

    assert answer.status_code == 400
    assert answer.json()["error"] == (
        "the JSON holds a number beyond the range of a 64-bit float (such as 1e999)"
    )
    assert [e for e in inbox.all_events() if e["client_id"] == f"client-{marker}"] == []
    assert inbox.metric('chatra_webhooks_rejected_total{reason="number_out_of_range"}') == (
        before + 1
    )


def test_duplicate_keys_are_refused_at_the_door(inbox: InboxProcess) -> None:
    answer = inbox.post(body_text(uuid.uuid4().hex, ', "eventName": "chatStarted"'))
    assert answer.status_code == 400
    assert answer.json()["error"] == "the JSON has an object with the same key twice"


def test_a_lone_surrogate_is_stored_as_a_replacement_character(inbox: InboxProcess) -> None:
    marker = uuid.uuid4().hex
    answer = inbox.post(body_text(marker, message=CUT_EMOJI))
    assert answer.status_code == 200, answer.text

    (stored,) = [e for e in inbox.all_events() if e["client_id"] == f"client-{marker}"]
    assert stored["body"]["messages"] == [{"type": "client", "message": "Hi \ufffd"}]
    # Every later read still works.
    assert inbox.read_events(0, headers=inbox.auth).status_code == 200


def test_a_poison_event_among_concurrent_good_ones_fails_nobody(inbox: InboxProcess) -> None:
    """Finding 2: a lone surrogate in client.id made the whole group commit fail."""
    marker = uuid.uuid4().hex
    bodies = [body_text(f"{marker}-{n}") for n in range(39)]
    bodies.insert(17, body_text(marker).replace(f"client-{marker}", "client-\\ud800x"))
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        answers = list(pool.map(inbox.post, bodies))

    assert [answer.status_code for answer in answers] == [200] * len(bodies)
    stored = {e["client_id"] for e in inbox.all_events()}
    assert {f"client-{marker}-{n}" for n in range(39)} <= stored
    assert "client-\ufffdx" in stored


def plant(store_url: str, bodies: list[str]) -> list[int]:
    """Store `bodies` directly, as an older inbox or a hand edit could have; return their seqs."""
    engine = sa.create_engine(normalize_store_url(store_url))
    seqs: list[int] = []
    try:
        with engine.begin() as conn:
            for body in bodies:
                seq = conn.execute(
                    sa.update(INBOX)
                    .where(INBOX.c.id == 1)
                    .values(last_seq=INBOX.c.last_seq + 1)
                    .returning(INBOX.c.last_seq)
                ).scalar_one()
                conn.execute(
                    sa.insert(EVENTS).values(
                        seq=seq,
                        received_at=dt.datetime.now(dt.UTC),
                        event_name="chatFragment",
                        client_id=f"planted-{seq}",
                        body=body,
                        body_sha256=hashlib.sha256(f"{seq}{body}".encode()).hexdigest(),
                    )
                )
                seqs.append(seq)
    finally:
        engine.dispose()
    return seqs


def undecodable(store_url: str, seq: int) -> None:
    """Make the body of `seq` bytes that are not UTF-8 (SQLite does not check TEXT)."""
    engine = sa.create_engine(normalize_store_url(store_url))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE chatra_webhooks_events SET body = CAST(X'7B2261223A22FF227D' AS TEXT)"
                " WHERE seq = ?",
                (seq,),
            )
    finally:
        engine.dispose()


POISON = [
    '{"eventName": "chatFragment", "n": 1e999, "messages": [{"message": "kept"}]}',
    '{"eventName": "chatFragment", "messages": [{"message": "Hi \\ud83d"}]}',
    "not JSON: a secret chat text",
    '["an", "array"]',
    '{"a":' * 200 + "1" + "}" * 200,
]


def test_poison_already_in_the_store_never_fails_a_read(
    store_url: str,
    webhook_inbox_factory: Callable[..., InboxProcess],
    run_cli: Callable[..., CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    inbox = webhook_inbox_factory(store_url)
    first = inbox.post(body_text("before")).json()["seq"]
    sqlite = store_url.startswith("sqlite")
    planted = plant(store_url, [*POISON, '{"a": "made bytes"}'] if sqlite else POISON)
    if sqlite:
        undecodable(store_url, planted[-1])
    last = inbox.post(body_text("after")).json()["seq"]

    pages = [inbox.read_events(0, limit, headers=inbox.auth) for limit in (1000, 1)]
    assert [page.status_code for page in pages] == [200, 200]
    events = {e["seq"]: e for e in inbox.all_events(limit=1)}
    assert set(events) == {first, *planted[:2], *planted[5:], last}
    assert events[planted[0]]["body"]["n"] is None
    assert events[planted[0]]["body"]["messages"] == [{"message": "kept"}]
    assert events[planted[1]]["body"]["messages"] == [{"message": "Hi \ufffd"}]
    if sqlite:
        assert events[planted[5]]["body"] == {"a": "\ufffd"}
    whole = pages[0].json()
    assert (whole["next_after"], whole["has_more"]) == (last, False)
    # A page whose only row was skipped still moves the reader past it.
    skipped = inbox.read_events(planted[2] - 1, 1, headers=inbox.auth).json()
    assert (skipped["events"], skipped["next_after"]) == ([], planted[2])
    assert skipped["has_more"] is True

    assert inbox.metric('chatra_webhooks_read_repaired_total{repair="number_out_of_range"}') > 0
    assert inbox.metric('chatra_webhooks_read_repaired_total{repair="lone_surrogate"}') > 0
    assert inbox.metric('chatra_webhooks_read_skipped_total{reason="not_json"}') > 0
    assert inbox.metric('chatra_webhooks_read_skipped_total{reason="not_object"}') > 0
    assert inbox.metric('chatra_webhooks_read_skipped_total{reason="too_deep"}') > 0
    log = inbox.log()
    assert f"event seq {planted[2]} is not JSON in the store; skipped" in log
    assert f"event seq {planted[0]} served with a repair: number_out_of_range" in log
    assert "secret chat text" not in log
    assert "Traceback" not in log

    output = tmp_path / "events.jsonl"
    export = run_cli("export", "--store", store_url, "--output", str(output))
    assert export.returncode == 0, export.stderr
    assert "Traceback" not in export.stderr
    assert f"exported {len(events)} events; the last seq is {last}" in export.stderr
    assert (
        "skipped 3 events that cannot be served as a JSON object (not_json: 1, not_object: 1, "
        "too_deep: 1)" in export.stderr
    )
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(events)
    assert lines[2]["messages"] == [{"message": "Hi \ufffd"}]
    assert "secret chat text" not in export.stderr
