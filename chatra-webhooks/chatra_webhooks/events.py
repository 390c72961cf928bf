r"""What a webhook body must be to be stored, what it is indexed by, how a stored one is served.

Chatra POSTs a JSON object. Whether it ever sends the JSON form-encoded instead is not known,
so a form body with exactly one field that holds a JSON object is accepted too. Anything else
is refused with a reason that never quotes the body (bodies hold personal data).

What is stored must read back as strict JSON for every reader (this inbox's read API, the
tap, PostgreSQL's jsonb), so at the door:

- a number beyond a 64-bit float (`1e999`) is refused: JavaScript, which Chatra's servers
  speak, never writes one, so it can only come from someone else;
- an object with the same key twice is refused: readers disagree on which value wins, and
  JavaScript never writes one either;
- a lone surrogate escape (`"\ud83d"`, half an emoji) is stored as U+FFFD: JavaScript writes
  one for a string cut inside an emoji, so it may well come from Chatra, and losing the event
  would be worse than losing half a character.

Rows stored before these rules, or edited by hand, are served repaired the same way (a
number out of range becomes null) or, when they are no JSON object at all, skipped.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import typing as t
from dataclasses import dataclass
from urllib.parse import parse_qsl

#: Deepest nesting accepted. Chatra's payloads are a few levels deep; a limit keeps every
#: reader (this inbox's read API, the tap) clear of recursion limits.
MAX_DEPTH = 64


class BodyError(ValueError):
    """A body that is not a webhook event.

    Attributes:
        reason: A short label for metrics (`not_utf8`, `not_json`, `not_object`, `too_deep`).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class IncomingEvent:
    """A webhook body accepted for storing.

    Attributes:
        body: The JSON text exactly as sent (the form field's value for a form body).
        body_sha256: Hex SHA-256 of the raw request body: a retry has the same one.
        event_name: `eventName`, when it is a string.
        client_id: `client.id`, when it is a string.
        chat_id: `client.chatId` (or a top-level `chatId`), when it is a string.
    """

    body: str
    body_sha256: str
    event_name: str | None
    client_id: str | None
    chat_id: str | None


#: Where a lone surrogate may hide: an escape of a surrogate half, or (in text read back from
#: a store that held bytes that were not UTF-8) a surrogate itself. Valid pairs match too; the
#: decoded strings are then checked one by one.
_MAYBE_SURROGATE = re.compile(r"\\u[dD][89abcdefABCDEF]|[\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def _may_hold_surrogates(text: str) -> bool:
    # The first two tests are quick and nearly always false; the search looks closer.
    return ("\\u" in text or not text.isascii()) and _MAYBE_SURROGATE.search(text) is not None


def _reject_constant(name: str) -> t.NoReturn:
    # Python's json accepts NaN and Infinity; JSON does not, and PostgreSQL's jsonb neither.
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        msg = "the JSON holds a number beyond the range of a 64-bit float (such as 1e999)"
        raise BodyError("number_out_of_range", msg)
    return number


def _unique_keys(pairs: list[tuple[str, t.Any]]) -> dict[str, t.Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise BodyError("duplicate_key", "the JSON has an object with the same key twice")
    return document


def without_surrogates(text: str) -> str:
    """`text` with each lone surrogate (not valid Unicode, not encodable) replaced by U+FFFD."""
    return _SURROGATE.sub(REPLACEMENT, text)


def _repair_strings(value: t.Any) -> tuple[t.Any, bool]:
    """`value` with lone surrogates replaced in every key and string; whether any was."""
    if isinstance(value, str):
        repaired = without_surrogates(value)
        return repaired, repaired != value
    if isinstance(value, list):
        items = [_repair_strings(item) for item in value]
        return [item for item, _ in items], any(changed for _, changed in items)
    if isinstance(value, dict):
        changed = False
        document = {}
        for key, item in value.items():
            new_key, key_changed = _repair_strings(key)
            document[new_key], item_changed = _repair_strings(item)
            changed = changed or key_changed or item_changed
        return document, changed
    return value, False


def _depth(document: object) -> int:
    """Levels of nested objects and arrays, counted without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
    return deepest


def _too_deep(text: str, document: object) -> bool:
    # Nesting needs a bracket per level: most bodies have too few to be checked at all.
    return text.count("{") + text.count("[") > MAX_DEPTH and _depth(document) > MAX_DEPTH


def _json_object(text: str) -> dict[str, t.Any]:
    try:
        document = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        msg = f"the JSON is nested more than {MAX_DEPTH} levels deep"
        raise BodyError("too_deep", msg) from None
    except BodyError:
        raise
    except ValueError:
        raise BodyError("not_json", "the body is not JSON") from None
    # Depth first: whether the decoder itself gives up on deep nesting (RecursionError)
    # depends on the Python version (3.13 parses 5,000 levels), the answer must not.
    if _too_deep(text, document):
        msg = f"the JSON is nested more than {MAX_DEPTH} levels deep"
        raise BodyError("too_deep", msg)
    if not isinstance(document, dict):
        kind = type(document).__name__.replace("dict", "object").replace("list", "array")
        msg = f"the body is a JSON {kind}, not an object"
        raise BodyError("not_object", msg)
    return document


def _form_field(text: str) -> str | None:
    """The value of a form body's single field, or None when it is not such a form."""
    try:
        fields = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    return fields[0][1] if len(fields) == 1 else None


def _text(value: object) -> str | None:
    # An index column: PostgreSQL's text cannot hold NUL, and no real name or ID has one.
    return value if isinstance(value, str) and value and "\x00" not in value else None


def parse_body(raw: bytes) -> IncomingEvent:
    """Check a request body and pick out its event name, client and chat.

    The Content-Type is not consulted (Chatra's is unconfirmed): a body starting with `{` is
    JSON, anything else is tried as a form with one field.

    Raises:
        BodyError: If the body is not UTF-8, not JSON, not an object, nested too deeply, holds
            a number out of range or an object with a key twice.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("not_utf8", "the body is not UTF-8 text") from None
    if not text.lstrip().startswith("{"):
        text = _form_field(text) or text
    document = _json_object(text)
    if _may_hold_surrogates(text):
        document, repaired = _repair_strings(document)
        if repaired:
            text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    client = document.get("client")
    client = client if isinstance(client, dict) else {}
    return IncomingEvent(
        body=text,
        body_sha256=hashlib.sha256(raw).hexdigest(),
        event_name=_text(document.get("eventName")),
        client_id=_text(client.get("id")),
        chat_id=_text(client.get("chatId")) or _text(document.get("chatId")),
    )


@dataclass(frozen=True)
class ServedBody:
    """A stored body as it can be served.

    Attributes:
        document: The body, or None when it is no JSON object (the event is skipped).
        repairs: What was repaired (`number_out_of_range`: a number beyond a float, or NaN or
            Infinity, became null; `lone_surrogate`: became U+FFFD), or why it cannot be
            served (`not_json`, `not_object`, `too_deep`).
    """

    document: dict[str, t.Any] | None
    repairs: tuple[str, ...] = ()


def stored_body(text: str) -> ServedBody:
    """A stored body, repaired so that it encodes as strict JSON in UTF-8."""
    repairs: set[str] = set()

    def out_of_range(number: float | None) -> float | None:
        if number is None or math.isinf(number) or math.isnan(number):
            repairs.add("number_out_of_range")
            return None
        return number

    try:
        document = json.loads(
            text,
            parse_float=lambda literal: out_of_range(float(literal)),
            parse_constant=lambda _name: out_of_range(None),
        )
    except (ValueError, RecursionError):
        return ServedBody(None, ("not_json",))
    if not isinstance(document, dict):
        return ServedBody(None, ("not_object",))
    # Deeper than the door allows: a reader's recursion limit could fail on it.
    if _too_deep(text, document):
        return ServedBody(None, ("too_deep",))
    if _may_hold_surrogates(text):
        document, repaired = _repair_strings(document)
        if repaired:
            repairs.add("lone_surrogate")
    return ServedBody(document, tuple(sorted(repairs)))
