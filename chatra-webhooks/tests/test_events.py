"""What the inbox accepts as a webhook body, and what it picks out of one."""

from __future__ import annotations

import hashlib
import json
import typing as t
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatra_webhooks.events import MAX_DEPTH, BodyError, parse_body, stored_body

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
JSON_OBJECTS = st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6)


def test_fields_come_from_chatra_shape() -> None:
    raw = json.dumps(
        {"eventName": "chatFragment", "client": {"id": "c1", "chatId": "h1"}, "messages": []}
    ).encode()
    event = parse_body(raw)
    assert (event.event_name, event.client_id, event.chat_id) == ("chatFragment", "c1", "h1")
    assert event.body == raw.decode()
    assert event.body_sha256 == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"eventName": 5, "client": "c1"},
        {"eventName": "", "client": {"id": None, "chatId": ["x"]}},
    ],
)
def test_fields_of_other_shapes_are_left_empty(document: dict[str, t.Any]) -> None:
    event = parse_body(json.dumps(document).encode())
    assert (event.event_name, event.client_id, event.chat_id) == (None, None, None)


def test_top_level_chat_id_is_used_when_the_client_has_none() -> None:
    event = parse_body(b'{"chatId": "h2", "client": {"id": "c2"}}')
    assert (event.client_id, event.chat_id) == ("c2", "h2")


def test_a_form_field_holding_json_is_unwrapped_and_hashed_as_sent() -> None:
    document = {"eventName": "chatTranscript", "client": {"id": "c3"}}
    raw = urlencode({"payload": json.dumps(document)}).encode()
    event = parse_body(raw)
    assert json.loads(event.body) == document
    assert event.event_name == "chatTranscript"
    assert event.body_sha256 == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff{}", "not_utf8"),
        (b"", "not_json"),
        (b"[]", "not_object"),
        (b"1", "not_object"),
        (b'{"a": Infinity}', "not_json"),
        (b'{"a": "b"}{"c": 1}', "not_json"),
        (b"a=%7B%7D&b=%7B%7D", "not_json"),
        (b"a=%5B%5D", "not_object"),
        (b'{"a": "\x00"}', "not_json"),
        (b"[" * 5000 + b"]" * 5000, "too_deep"),
        (b'{"a": 1e999}', "number_out_of_range"),
        (b'{"a": [1, {"b": -1E400}]}', "number_out_of_range"),
        (b'{"a": 1, "b": 2, "a": 3}', "duplicate_key"),
        (b'{"a": {"b": 1, "b": 1}}', "duplicate_key"),
        (b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), "too_deep"),
    ],
)
def test_bad_bodies_raise_body_error(raw: bytes, reason: str) -> None:
    with pytest.raises(BodyError) as caught:
        parse_body(raw)
    assert caught.value.reason == reason


def test_a_json_body_whose_text_looks_like_a_form_stays_json() -> None:
    raw = b'{"eventName": "chatFragment", "messages": [{"message": "a=b"}]}'
    assert parse_body(raw).body == raw.decode()


def test_nesting_up_to_the_limit_is_accepted() -> None:
    raw = b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH
    assert parse_body(raw).body == raw.decode()


def test_errors_never_quote_the_body() -> None:
    secret = "my-secret-chat-text"
    for raw in (f"not json {secret}", f'["{secret}"]', f"x={secret}"):
        with pytest.raises(BodyError) as caught:
            parse_body(raw.encode())
        assert secret not in str(caught.value)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_accepted_or_refused_with_body_error(raw: bytes) -> None:
    reasons = {"not_utf8", "not_json", "not_object", "too_deep"}
    try:
        event = parse_body(raw)
    except BodyError as exc:
        reason = exc.reason
    else:
        reason = "accepted"
        assert isinstance(json.loads(event.body), dict)
    assert reason in {*reasons, "accepted"}


@settings(max_examples=60, deadline=None)
@given(JSON_OBJECTS, st.booleans())
def test_any_json_object_is_accepted_as_is(document: dict[str, t.Any], as_form: bool) -> None:
    text = json.dumps(document)
    raw = urlencode({"data": text}).encode() if as_form else text.encode()
    event = parse_body(raw)
    assert event.body == text
    assert json.loads(event.body) == document


def test_lone_surrogates_become_replacement_characters_everywhere() -> None:
    # What JavaScript's JSON.stringify writes for a string cut inside an emoji.
    raw = (
        b'{"eventName": "chatFragment", "client": {"id": "c\\ud800x", "chatId": "h1"},'
        b' "messages": [{"message": "cut \\udc00"}], "k\\udbff": 1, "ok": "\\ud83d\\ude00"}'
    )
    event = parse_body(raw)
    document = json.loads(event.body)
    assert document["client"]["id"] == "c\ufffdx"
    assert document["messages"][0]["message"] == "cut \ufffd"
    assert document["k\ufffd"] == 1
    assert document["ok"] == "\U0001f600"
    assert event.client_id == "c\ufffdx"
    event.body.encode("utf-8")
    # The hash is the raw body's: a retry of the same delivery is still a duplicate.
    assert event.body_sha256 == hashlib.sha256(raw).hexdigest()


def test_index_fields_holding_nul_are_left_empty() -> None:
    event = parse_body(b'{"eventName": "a\\u0000", "client": {"id": "c\\u0000", "chatId": "h"}}')
    assert (event.event_name, event.client_id, event.chat_id) == (None, None, "h")
    assert json.loads(event.body)["client"]["id"] == "c\x00"


@pytest.mark.parametrize(
    ("text", "document", "repairs"),
    [
        ('{"a": 1}', {"a": 1}, ()),
        ('{"a": 1e999, "b": [-1e999, NaN, Infinity]}', {"a": None, "b": [None, None, None]},
         ("number_out_of_range",)),
        ('{"a": "\\ud800x"}', {"a": "\ufffdx"}, ("lone_surrogate",)),
        ('{"a": "\udcff"}', {"a": "\ufffd"}, ("lone_surrogate",)),
        ('{"a": 1, "a": 2}', {"a": 2}, ()),
    ],
    ids=["clean", "non-finite", "escaped-surrogate", "undecodable-byte", "duplicate-key"],
)  # fmt: skip
def test_stored_bodies_are_served_repaired(
    text: str, document: dict[str, t.Any], repairs: tuple[str, ...]
) -> None:
    served = stored_body(text)
    assert (served.document, served.repairs) == (document, repairs)
    json.dumps(served.document, allow_nan=False, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not_json"),
        ("[1]", "not_object"),
        ("[" * 100_000, "not_json"),
        ('{"a":' * 500 + "1" + "}" * 500, "too_deep"),
    ],
)
def test_stored_bodies_that_are_no_object_cannot_be_served(text: str, reason: str) -> None:
    served = stored_body(text)
    assert (served.document, served.repairs) == (None, (reason,))
