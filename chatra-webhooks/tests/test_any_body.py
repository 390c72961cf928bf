"""Any body at all, over HTTP, on SQLite and PostgreSQL: refused with a 4xx, or stored and
readable (issue 23). No body may ever get a 5xx or make a read fail.

Bodies are built as JSON *text*, so that they can hold what `json.dumps` never writes:
numbers beyond a float, keys twice, lone surrogates (escaped, or raw and so not UTF-8), plus
form bodies and arbitrary bytes. `make soak` runs many more examples.
"""

from __future__ import annotations

import json
import typing as t
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

if t.TYPE_CHECKING:
    from chatra_webhooks.testing import InboxProcess

DEFAULT_EXAMPLES = 40
SOAK_EXAMPLES = 2000

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"])
ANY_CHARACTER = st.characters(codec=None, categories=None) | SURROGATES


def _string(text: str, escaped: bool) -> str:
    return json.dumps(text, ensure_ascii=escaped)


STRINGS = st.builds(_string, st.text(ANY_CHARACTER, max_size=12), st.booleans())
KEYS = (
    st.sampled_from(['"eventName"', '"client"', '"id"', '"chatId"', '"a"', '"\\ud800"']) | STRINGS
)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats().map(json.dumps),  # NaN, Infinity and -Infinity too: not JSON
    st.sampled_from(["1e999", "-1E400", "1e-999", "-0", "0.5e+3", "1" * 5000]),
)
JSON_TEXT = st.recursive(
    st.sampled_from(["true", "false", "null"]) | NUMBERS | STRINGS,
    lambda children: (
        st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(KEYS, children), max_size=4).map(
            lambda pairs: "{" + ",".join(f"{key}:{value}" for key, value in pairs) + "}"
        )
    ),
    max_leaves=12,
)
OBJECT_TEXT = st.lists(st.tuples(KEYS, JSON_TEXT), max_size=5).map(
    lambda pairs: "{" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}"
)


def _bytes(text: str) -> bytes:
    # Raw surrogates become bytes that are not UTF-8, as a broken sender would send them.
    return text.encode("utf-8", "surrogatepass")


def _form(text: str) -> bytes:
    return urlencode({"data": text}, encoding="utf-8", errors="surrogatepass").encode()


BODIES = st.one_of(
    OBJECT_TEXT.map(_bytes),
    JSON_TEXT.map(_bytes),
    OBJECT_TEXT.map(_form),
    st.binary(max_size=300),
)


def _strict(name: str) -> t.NoReturn:
    msg = f"{name} in a served page"
    raise ValueError(msg)


def check_refused_or_stored_and_readable(inbox: InboxProcess, body: bytes) -> None:
    answer = inbox.post(body)
    assert answer.status_code == 200 or 400 <= answer.status_code < 500, answer.status_code
    if answer.status_code != 200:
        assert answer.json()["error"]
        return
    seq = answer.json()["seq"]
    page = inbox.read_events(seq - 1, 1, headers=inbox.auth)
    assert page.status_code == 200, page.text
    # Strict JSON in UTF-8: no NaN or Infinity, no lone surrogate.
    served = json.loads(page.content.decode("utf-8"), parse_constant=_strict)
    assert [event["seq"] for event in served["events"]] == [seq]
    assert isinstance(served["events"][0]["body"], dict)


def run_property(inbox: InboxProcess, examples: int) -> None:
    # The inbox is not an argument of the property: Hypothesis would print all its fields
    # (its environment included) with a failing example.
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=BODIES)
    def refused_or_stored_and_readable(body: bytes) -> None:
        check_refused_or_stored_and_readable(inbox, body)

    refused_or_stored_and_readable()


def test_any_body_is_refused_or_stored_and_readable(inbox: InboxProcess) -> None:
    run_property(inbox, DEFAULT_EXAMPLES)


@pytest.mark.soak
def test_many_bodies_are_refused_or_stored_and_readable(inbox: InboxProcess) -> None:
    run_property(inbox, SOAK_EXAMPLES)
