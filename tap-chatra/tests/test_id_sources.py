"""Every ID list: config lists, .txt/.csv/.jsonl files; bad input reported (webhook events:
test_webhook_streams.py)."""

from __future__ import annotations

import json
import logging

import pytest

from tap_chatra.event_files import EventFile
from tap_chatra.id_sources import IdSourceError, collect_ids

LOGGER = logging.getLogger("tap-chatra.test")


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_text_file_skips_blank_lines_and_comments(kit, caplog) -> None:
    path = kit.write(
        "ids.txt", ["# exported 2024-05-01", "AAA", "", "   ", "  BBB  ", "AAA", "CCC"]
    )
    lists = collect_ids({"message_ids_file": str(path)}, LOGGER)
    assert lists.for_stream("messages") == ["AAA", "BBB", "CCC"]
    assert _warnings(caplog) == []


def test_text_file_reports_dot_segment_ids_with_their_line(kit, caplog) -> None:
    path = kit.write("ids.txt", ["AAA", "..", ".", "BBB"])
    lists = collect_ids({"message_ids_file": str(path)}, LOGGER)
    assert lists.for_stream("messages") == ["AAA", "BBB"]
    warnings = _warnings(caplog)
    assert [w.split(": ", 1)[0] for w in warnings] == [
        f"message_ids_file {path}, line 2",
        f"message_ids_file {path}, line 3",
    ]
    assert all(w.endswith("; skipped.") for w in warnings)


def test_csv_file_reads_the_id_column_and_reports_empty_cells(kit, caplog) -> None:
    path = kit.write("ids.csv", ["name,id", "first,AAA", "blank,", "spaces,   ", "last,BBB"])
    lists = collect_ids({"client_ids_file": str(path)}, LOGGER)
    assert lists.for_stream("clients") == ["AAA", "BBB"]
    assert _warnings(caplog) == [
        f"client_ids_file {path}, line 3: empty ID; skipped.",
        f"client_ids_file {path}, line 4: ID is only whitespace; skipped.",
    ]


def test_csv_file_without_id_column_is_an_error(kit) -> None:
    path = kit.write("ids.csv", ["message", "AAA"])
    with pytest.raises(IdSourceError, match=r"message_ids_file: .*ids\.csv has no 'id' column"):
        collect_ids({"message_ids_file": str(path)}, LOGGER)


def test_jsonl_file_reads_id_keys_and_reports_bad_lines(kit, caplog) -> None:
    rows = [
        json.dumps({"id": "AAA", "other": 1}),
        "{not json",
        json.dumps({"name": "no id"}),
        json.dumps({"id": ""}),
        json.dumps({"id": 12345}),
        json.dumps(["not", "an", "object"]),
        "",
        json.dumps({"id": None}),
    ]
    path = kit.write("ids.jsonl", rows)
    lists = collect_ids({"pushed_message_ids_file": str(path)}, LOGGER)
    assert lists.for_stream("pushed_messages") == ["AAA", "12345"]
    source = f"pushed_message_ids_file {path}"
    assert _warnings(caplog) == [
        f"{source}, line 2: not valid JSON; skipped.",
        f"{source}, line 3: no 'id' key; skipped.",
        f"{source}, line 4: empty ID; skipped.",
        f"{source}, line 6: not a JSON object; skipped.",
        f"{source}, line 8: ID must be a string, got NoneType; skipped.",
    ]


def test_config_lists_report_blank_items_with_their_position(caplog) -> None:
    lists = collect_ids({"message_ids": ["AAA", "", " ", "BBB"]}, LOGGER)
    assert lists.for_stream("messages") == ["AAA", "BBB"]
    assert _warnings(caplog) == [
        "config message_ids, item 2: empty ID; skipped.",
        "config message_ids, item 3: ID is only whitespace; skipped.",
    ]


@pytest.mark.parametrize("setting", ["message_ids_file", "client_ids_file"])
def test_missing_file_is_one_clear_error(kit, setting) -> None:
    missing = kit.tmp_path / "nowhere.txt"
    with pytest.raises(IdSourceError) as raised:
        collect_ids({setting: str(missing)}, LOGGER)
    assert str(raised.value) == f"{setting}: cannot read {missing}: No such file or directory."


def test_binary_file_is_one_clear_error(kit) -> None:
    path = kit.tmp_path / "ids.txt"
    path.write_bytes(b"\xff\xfe\x00AAA")
    with pytest.raises(IdSourceError, match="is not UTF-8 text"):
        collect_ids({"message_ids_file": str(path)}, LOGGER)


def test_many_malformed_ids_are_capped_in_the_log(kit, caplog) -> None:
    path = kit.write("ids.csv", ["id,n", *([",x"] * 30), "AAA,x"])
    assert collect_ids({"message_ids_file": str(path)}, LOGGER).for_stream("messages") == ["AAA"]
    warnings = _warnings(caplog)
    assert len(warnings) == 21
    assert warnings[-1] == f"message_ids_file {path}: 30 malformed IDs in all, 10 not listed above."


@pytest.mark.parametrize("suffix", ["txt", "csv", "jsonl"])
def test_each_file_format_drives_a_sync(chatra_sandbox, kit, suffix) -> None:
    wanted = chatra_sandbox.ids("messages")[:4]
    rows = {
        "txt": ["# four messages", *wanted],
        "csv": ["id,note", *(f"{record_id},x" for record_id in wanted)],
        "jsonl": [json.dumps({"id": record_id}) for record_id in wanted],
    }[suffix]
    path = kit.write(f"messages.{suffix}", rows)
    config = kit.config(chatra_sandbox, message_ids_file=str(path), fetch_message_clients=False)
    output = kit.run(config)
    assert output.ids("messages") == wanted
    assert sorted(kit.gets(chatra_sandbox)) == sorted(wanted)


def test_all_sources_are_combined(chatra_sandbox, kit) -> None:
    messages = chatra_sandbox.ids("messages")
    pushed = chatra_sandbox.ids("pushed_messages")
    config = kit.config(
        chatra_sandbox,
        message_ids=messages[:2],
        message_ids_file=str(kit.write("m.txt", messages[1:4])),
        pushed_message_ids=pushed[:1],
        pushed_message_ids_file=str(kit.write("p.csv", ["id", pushed[1]])),
        client_ids_file=str(kit.write("c.jsonl", ['{"id": "crm/contact/1001"}'])),
        fetch_message_clients=False,
    )
    output = kit.run(config)
    assert output.ids("messages") == messages[:4]
    assert output.ids("pushed_messages") == pushed[:2]
    assert output.ids("clients") == ["crm/contact/1001"]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085"])
def test_jsonl_lines_split_on_newline_only(kit, caplog, separator) -> None:
    # JSON allows these unescaped inside a string; str.splitlines would cut the line there.
    events = [
        json.dumps(
            {"client": {"id": "C1"}, "messages": [{"id": "M1", "text": f"a{separator}b"}]},
            ensure_ascii=False,
        ),
        json.dumps({"client": {"id": "C2"}}),
    ]
    webhook = kit.write("events.jsonl", events)
    read = list(EventFile(webhook, {}, LOGGER).events("webhook_events"))
    assert [event.payload["client"]["id"] for event in read] == ["C1", "C2"]
    assert read[0].payload["messages"][0]["text"] == f"a{separator}b"
    ids = kit.write("ids.jsonl", [json.dumps({"id": f"X{separator}Y"}, ensure_ascii=False)])
    lists = collect_ids({"message_ids_file": str(ids)}, LOGGER)
    assert lists.for_stream("messages") == [f"X{separator}Y"]
    assert _warnings(caplog) == []


def test_lone_surrogate_ids_are_reported_with_their_line_and_skipped(kit, caplog) -> None:
    rows = [json.dumps({"id": "c\udc00x"}), json.dumps({"id": "OK1"})]
    path = kit.write("ids.jsonl", rows)
    config = {"client_ids_file": str(path), "message_ids": ["M\udfff"]}
    lists = collect_ids(config, LOGGER)
    assert lists.for_stream("clients") == ["OK1"]
    assert lists.for_stream("messages") == []
    warnings = _warnings(caplog)
    assert len(warnings) == 2
    assert all("lone surrogate" in w and w.endswith("; skipped.") for w in warnings)
