"""Property tests: no ID, body or state, however odd, raises outside the tap's own handling.

Strings include lone surrogates (JSON can carry them as \\udc00 escapes) and the line
separators JSON allows unescaped; JSON values nest objects and arrays of all of these.
"""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from contextlib import redirect_stdout
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from singer_sdk.singerlib.json import serialize_json

from chatra_client import id_problem, record_path
from tap_chatra.bodies import UnusableBodyError, decode_object
from tap_chatra.client import ChatraStream
from tap_chatra.client_refresh import NamedClients, RefreshRule, known_clients
from tap_chatra.errors import StateInputError
from tap_chatra.event_files import EventFile
from tap_chatra.events import ids_in_event
from tap_chatra.id_sources import collect_ids
from tap_chatra.id_state import IdState, RefreshRun, plan_fetches
from tap_chatra.state_input import read_state_file
from tap_chatra.tap import TapChatra

LOGGER = logging.getLogger("tap-chatra.properties")
CONFIG = {"api_key_pair": "pub:secret", "api_url": "http://127.0.0.1:9/api"}
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: For the examples that build a tap or run a stream (tens of milliseconds each).
FEW = settings(PROPERTY, max_examples=40)

ANY_CHAR = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),  # lone surrogates
    st.sampled_from(["\u2028", "\u2029", "\u0085", "\n", "\r", "/", "?", "#", ".", "%", " "]),
)
TEXT = st.text(ANY_CHAR, max_size=24)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


@PROPERTY
@given(value=st.one_of(TEXT, JSON))
def test_every_value_is_one_path_segment_or_a_reason(value) -> None:
    problem = id_problem(value)
    if problem is not None:
        assert isinstance(problem, str)
        return
    record_id = str(value)
    prefix, segment = record_path("clients", record_id).rsplit("/", 1)
    assert prefix == "/clients"
    assert not set(segment) & set("/?# ")
    assert segment.isascii()
    assert unquote(segment, errors="strict") == record_id


@PROPERTY
@given(rows=st.lists(JSON, max_size=6), events=st.lists(JSON, max_size=6))
def test_id_files_and_webhook_events_of_any_json_give_only_fetchable_ids(
    tmp_path_factory, rows, events
) -> None:
    folder = tmp_path_factory.mktemp("ids")
    ids_file = folder / "ids.jsonl"
    ids_file.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    events_file = folder / "events.jsonl"
    events_file.write_text(
        "\n".join(json.dumps(event, ensure_ascii=False).replace("\\n", "\n") for event in events),
        encoding="utf-8",
        errors="backslashreplace",  # a lone surrogate written raw is not UTF-8 at all
    )
    lists = collect_ids({"client_ids_file": str(ids_file)}, LOGGER)
    found = [record_id for stream in ("messages", "pushed_messages", "clients")
             for record_id in lists.for_stream(stream)]  # fmt: skip
    for event in EventFile(events_file, {}, LOGGER).events("webhook_events"):
        ids = ids_in_event(event.payload)
        found += [*ids.messages, *ids.pushed_messages, *ids.clients]
    for record_id in found:
        assert id_problem(record_id) is None


@PROPERTY
@given(content=st.one_of(st.binary(max_size=64), JSON.map(lambda v: json.dumps(v).encode())))
def test_any_body_decodes_to_an_object_or_a_short_reason(content: bytes) -> None:
    try:
        body = decode_object(content)
    except UnusableBodyError as problem:
        reason = str(problem)
    else:
        assert isinstance(body, dict)
        return
    assert reason.startswith(("is ", "holds "))


@pytest.fixture(scope="module")
def tap() -> TapChatra:
    return TapChatra(config=CONFIG)


@FEW
@given(body=st.dictionaries(TEXT, JSON, max_size=6), record_id=TEXT)
def test_any_object_body_becomes_a_record_the_sdk_writes(tap, body, record_id) -> None:
    if id_problem(record_id) is not None:
        return
    for name in ("messages", "clients"):
        stream = tap.streams[name]
        stream.get_records = lambda context, s=stream: s._emit_if_new(  # type: ignore[method-assign]
            record_id, body, Counter()
        )
        out = io.StringIO()
        with redirect_stdout(out):
            stream.sync()
        messages = [json.loads(line) for line in out.getvalue().splitlines()]
        [record] = [m["record"] for m in messages if m["type"] == "RECORD"]
        assert record["id"] == record_id
        assert stream.id_state.fetched_at(record_id) is not None


@FEW
@given(
    state=st.one_of(
        JSON,
        st.fixed_dictionaries({"bookmarks": JSON}),
        st.fixed_dictionaries(
            {"bookmarks": st.dictionaries(st.sampled_from(["messages", "clients"]), JSON)}
        ),
    )
)
def test_any_state_file_is_refused_in_one_line_or_resumed(state) -> None:
    file = io.StringIO(json.dumps(state))
    file.name = "state.json"
    try:
        text = read_state_file(file)
    except StateInputError as error:
        message = str(error)
    else:
        tap = TapChatra(config={**CONFIG, "message_ids": ["A"], "client_ids": ["C"]}, state=state)
        for stream in tap.streams.values():
            if not isinstance(stream, ChatraStream):
                continue  # the webhook streams plan no fetches
            plan = stream.plan(1_800_000_000)
            assert set(plan.to_fetch) <= set(stream.source_ids())
        assert json.loads(text) == state
        return
    assert "\n" not in message
    assert message.startswith("--state file state.json ")


@PROPERTY
@given(
    maps=st.dictionaries(
        st.sampled_from(["fetched", "missing", "failing", "refresh", "queued", "named"]),
        st.dictionaries(TEXT, JSON, max_size=4) | JSON,
    ),
    record_ids=st.lists(TEXT, max_size=6),
    # Any clock the state can write a minute of (1970 to 9999).
    now=st.integers(min_value=0, max_value=253_402_300_799 - 2 * 6),
)
def test_per_id_state_of_any_content_plans_and_records_without_error(maps, record_ids, now):
    bookmark = json.loads(json.dumps(maps))
    state = IdState(bookmark, logger=LOGGER)
    named = NamedClients(bookmark, logger=LOGGER)
    refresh = RefreshRun(bookmark, logger=LOGGER)
    rule = RefreshRule(named, refresh_started=refresh.start(now), refresh_seconds=3600)
    known = known_clients(record_ids, named, state)
    for is_due in (None, rule.is_due):
        plan = plan_fetches(known, state, now=now, missing_retry_seconds=3600, is_due=is_due)
        assert set(plan.to_fetch) <= set(known)
    for step, record_id in enumerate(record_ids):
        when = now + 2 * step
        state.mark_failing(record_id, when, "HTTP 503")
        assert state.failures(record_id) >= 1
        # Kept to the minute, and never before a fetch the STATE stamped later (clock skew).
        assert state.failing_at(record_id) >= when // 60 * 60
        state.mark_fetched(record_id, when + 1)
        assert state.failing_at(record_id) is None
    assert isinstance(json.loads(serialize_json(bookmark)), dict)
