"""The SDK behaviour tap-chatra relies on or changes; these fail if an SDK upgrade breaks it."""

from __future__ import annotations

import inspect
import io
import json
import logging
import signal
from contextlib import redirect_stdout

import pytest
from singer_sdk import Stream
from singer_sdk.plugin_base import PluginBase

from tap_chatra.id_map import IdMap
from tap_chatra.state_flush import StateSizeWriter
from tap_chatra.tap import TapChatra

CONFIG = {"api_key_pair": "pub:secret", "api_url": "http://127.0.0.1:9/api"}


def test_emit_state_now_writes_state_changed_without_a_record() -> None:
    # ChatraStream.emit_state_now reaches into `state_manager.is_flushed` and
    # `_write_state_message`: a 404 changes per-ID state without any RECORD, and the SDK alone
    # would not write that STATE until the stream ends.
    tap = TapChatra(config=CONFIG)
    stream = tap.streams["messages"]
    stream.id_state.mark_missing("gone", 1_700_000_000)
    out = io.StringIO()
    with redirect_stdout(out):
        stream.emit_state_now()
        stream.emit_state_now()  # nothing changed: the SDK's writer skips a duplicate
        stream.id_state.mark_fetched("here", 1_700_000_001)
        stream.emit_state_now()
    states = [json.loads(line)["value"] for line in out.getvalue().splitlines()]
    assert len(states) == 3 - 1
    assert states[0]["bookmarks"]["messages"]["missing"] == {"2023-11-14T22:13": ["gone"]}
    assert states[1]["bookmarks"]["messages"]["fetched"] == {"2023-11-14T22:13": ["here"]}


def test_streams_sync_in_dependency_order_not_by_name() -> None:
    # The SDK sorts streams by name; the webhook streams, which queue the IDs events name, must
    # come first, and clients after the message streams that queue their clients, so
    # `Tap.streams` is reordered, and sync_all must iterate it.
    tap = TapChatra(config=CONFIG)
    order = ["webhook_events", "chat_messages", "messages", "pushed_messages", "clients"]
    assert list(tap.streams) == order
    for stream in tap.streams.values():
        stream.get_records = lambda context: iter(())  # type: ignore[method-assign]
    out = io.StringIO()
    with redirect_stdout(out):
        tap.sync_all()
    messages = [json.loads(line) for line in out.getvalue().splitlines()]
    synced = [m["stream"] for m in messages if m["type"] == "SCHEMA"]
    assert synced == order


def test_sdk_runs_code_after_a_yield_only_once_the_record_is_written() -> None:
    # Per-ID state is updated after `yield record`, relying on the SDK writing each RECORD
    # before it asks the generator for the next one.
    tap = TapChatra(config=CONFIG)
    stream = tap.streams["messages"]
    seen_before_resume: list[int] = []
    out = io.StringIO()

    def records(context: object) -> object:
        for number in range(3):
            yield {"id": f"m{number}", "extra": {}}
            seen_before_resume.append(out.getvalue().count('"type":"RECORD"'))

    stream.get_records = records  # type: ignore[method-assign]
    with redirect_stdout(out):
        stream.sync()
    assert seen_before_resume == [1, 2, 3]


def test_discovery_needs_no_keys() -> None:
    tap = TapChatra(config={}, validate_config=False)
    catalog = tap.catalog_dict
    assert [entry["tap_stream_id"] for entry in catalog["streams"]] == [
        "webhook_events",
        "chat_messages",
        "messages",
        "pushed_messages",
        "clients",
    ]


def test_per_id_maps_go_through_the_sdk_state_writer_without_being_walked(monkeypatch) -> None:
    # tap_chatra.id_map relies on the SDK writing STATE with simplejson (which writes a
    # RawJSON's `encoded_json` as it is), on StateWriter skipping a STATE equal (==) to the
    # last one and keeping that one as a deep copy, and on StateMessage.to_dict deep-copying
    # too (dataclasses.asdict). A map answers == and deepcopy from its encoded fragments, so
    # an unchanged map is never encoded again: this counts the encodes of a minute.
    minute = "2023-11-14T22:13"
    encoded: list[int] = []
    original = IdMap._encode_minute

    def counting(self: IdMap, at: int, added: list[str]) -> str | None:
        encoded.append(at)
        return original(self, at, added)

    monkeypatch.setattr(IdMap, "_encode_minute", counting)
    state = {"bookmarks": {"messages": {"fetched": {minute: ["a", "b"]}}}}
    given = json.loads(json.dumps(state))
    tap = TapChatra(config=CONFIG, state=state)
    assert isinstance(tap.message_writer, StateSizeWriter)  # Tap.message_writer_class
    stream = tap.streams["messages"]
    assert isinstance(stream.stream_state["fetched"], IdMap)  # read in load_state
    out = io.StringIO()
    with redirect_stdout(out):
        tap.state_writer.write_state(tap.state)  # as sync_all does first
        unchanged = stream.emit_state_now()
        stream.id_state.mark_fetched("c", 1_700_000_000)
        changed = stream.emit_state_now()
    lines = out.getvalue().splitlines()
    states = [json.loads(line)["value"]["bookmarks"]["messages"]["fetched"] for line in lines]
    # The first says what the given state says (state_flush.StateSizeWriter.started_from); the
    # SDK's StateWriter skips the second itself, as equal to the first.
    assert states == [{minute: ["a", "b", "c"]}]
    assert tap.message_writer.unchanged == 1
    assert len(encoded) == 1 + 1  # when the given state was read, and after the change
    # Sizes: of the given state (not written again), then of the STATE written.
    assert (unchanged, changed) == (len(lines[0]) + 1 - len(',"c"'), len(lines[0]) + 1)
    assert state == given  # the caller's state is read, never changed


def test_the_sdk_signal_handlers_are_replaced(monkeypatch) -> None:
    # TapChatra overrides the SDK's private `_setup_signal_handlers`: the SDK's handler exits 0
    # wherever SIGTERM lands. Check the SDK still installs its handlers through that hook,
    # from PluginBase.__init__, and that TapChatra's version installs none.
    installed: list[int] = []
    monkeypatch.setattr(signal, "signal", lambda signum, handler: installed.append(signum))
    called: list[bool] = []
    original = TapChatra._setup_signal_handlers
    monkeypatch.setattr(
        TapChatra, "_setup_signal_handlers", lambda self: called.append(True) or original(self)
    )
    tap = TapChatra(config=CONFIG)
    assert called == [True]
    assert installed == []
    PluginBase._setup_signal_handlers(tap)
    assert set(installed) == {signal.SIGINT, signal.SIGTERM}


def test_the_sdks_own_state_messages_go_through_the_streams_writer(chatra_sandbox) -> None:
    # ChatraStream._write_state_message puts the run's cursor in place of its IDs; the SDK
    # writes STATE every STATE_MSG_FREQUENCY records through that same method, so none of
    # its STATEs lists an unfinished run's IDs either.
    ids = chatra_sandbox.ids("messages")[:5]
    config = {
        "api_key_pair": chatra_sandbox.key_pair,
        "api_url": chatra_sandbox.api_url,
        "requests_per_minute": 0,
        "message_ids": ids,
        "fetch_message_clients": False,
        "state_flush_seconds": 3600,  # no STATE of the tap's own schedule in the run
    }
    tap = TapChatra(config=config)
    tap.streams["messages"].STATE_MSG_FREQUENCY = 1
    out = io.StringIO()
    with redirect_stdout(out):
        tap.sync_all()
    messages = [json.loads(line) for line in out.getvalue().splitlines()]
    records = [i for i, m in enumerate(messages) if m.get("stream") == "messages"]
    during = [
        m["value"]["bookmarks"]["messages"]
        for m in messages[records[1] : records[-1]]
        if m["type"] == "STATE"
    ]
    assert [bookmark["run"]["done"] for bookmark in during] == [0, 1, 2, 3]
    assert all(bookmark["fetched"] == {} for bookmark in during)


def test_incremental_state_advances_only_through_the_hook_the_rest_streams_silence() -> None:
    # The REST streams are INCREMENTAL without a replication key (their state is per ID), and
    # override `Stream._increment_stream_state`, which the SDK calls after every record of an
    # INCREMENTAL stream and which raises without a replication key.
    source = inspect.getsource(Stream._sync_records)
    assert "self._increment_stream_state(record, context=current_context)" in source
    tap = TapChatra(config=CONFIG)
    stream = tap.streams["messages"]
    assert stream.replication_method == "INCREMENTAL"
    assert stream.replication_key is None
    with pytest.raises(ValueError, match="replication key"):
        Stream._increment_stream_state(stream, {"id": "x"}, context=None)
    stream._increment_stream_state({"id": "x"}, context=None)
    assert "replication_key_value" not in stream.stream_state


def test_request_metrics_go_to_debug_and_one_summary_line(
    chatra_sandbox, kit, caplog, monkeypatch
) -> None:
    # ChatraStream overrides the SDK's private `_write_request_duration_log` (RESTStream._request
    # calls it after every attempt): its INFO METRIC line per request was nearly every line of
    # a run, each parsed and logged again by Meltano. Fails if the SDK stops calling it.
    ids = chatra_sandbox.ids("messages")[:5]
    config = kit.config(chatra_sandbox, message_ids=ids, fetch_message_clients=False)

    def request_metrics(level: int) -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "singer_sdk.metrics"
            and r.levelno == level
            and "http_request_duration" in r.getMessage()
        ]

    with caplog.at_level(logging.INFO):
        kit.run(config)
    assert request_metrics(logging.INFO) == []
    summaries = [r.getMessage() for r in caplog.records if "ms on average" in r.getMessage()]
    assert len(summaries) == 1
    assert summaries[0].startswith("messages: 5 requests, ")
    assert summaries[0].endswith(", 0 answered an error.")

    caplog.clear()
    monkeypatch.setenv("TAP_CHATRA_LOGLEVEL", "debug")  # the SDK reads it, or LOGLEVEL
    with caplog.at_level(logging.DEBUG):
        kit.run(config)
    debug = request_metrics(logging.DEBUG)
    assert len(debug) == len(ids)
    assert all('"endpoint":"/messages/{id}"' in line for line in debug)
