"""What a webhook body must be to be stored, and the fields the inbox indexes it by.

Chatra POSTs a JSON object. Whether it ever sends the JSON form-encoded instead is not known,
so a form body with exactly one field that holds a JSON object is accepted too. Anything else
is refused with a reason that never quotes the body (bodies hold personal data).
"""

from __future__ import annotations

import hashlib
import json
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


def _reject_constant(name: str) -> t.NoReturn:
    # Python's json accepts NaN and Infinity; JSON does not, and PostgreSQL's jsonb neither.
    msg = f"{name} is not JSON"
    raise ValueError(msg)


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


def _json_object(text: str) -> dict[str, t.Any]:
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        msg = f"the JSON is nested more than {MAX_DEPTH} levels deep"
        raise BodyError("too_deep", msg) from None
    except ValueError:
        raise BodyError("not_json", "the body is not JSON") from None
    # Depth first: whether the decoder itself gives up on deep nesting (RecursionError)
    # depends on the Python version (3.13 parses 5,000 levels), the answer must not.
    if _depth(document) > MAX_DEPTH:
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
    return value if isinstance(value, str) and value else None


def parse_body(raw: bytes) -> IncomingEvent:
    """Check a request body and pick out its event name, client and chat.

    The Content-Type is not consulted (Chatra's is unconfirmed): a body starting with `{` is
    JSON, anything else is tried as a form with one field.

    Raises:
        BodyError: If the body is not UTF-8, not JSON, not an object, or nested too deeply.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("not_utf8", "the body is not UTF-8 text") from None
    if not text.lstrip().startswith("{"):
        text = _form_field(text) or text
    document = _json_object(text)
    client = document.get("client")
    client = client if isinstance(client, dict) else {}
    return IncomingEvent(
        body=text,
        body_sha256=hashlib.sha256(raw).hexdigest(),
        event_name=_text(document.get("eventName")),
        client_id=_text(client.get("id")),
        chat_id=_text(client.get("chatId")) or _text(document.get("chatId")),
    )
