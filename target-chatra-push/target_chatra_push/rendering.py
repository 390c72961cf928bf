"""Turning one row into one Chatra request.

The request holds the text (plain, or from a Jinja2 template: text_template.py) and the body
for the chosen mode; with it come the dedupe key and a hash of what the client would see.
"""

from __future__ import annotations

import functools
import hashlib
import typing as t
from dataclasses import dataclass

from target_chatra_push.keys import dedupe_key
from target_chatra_push.settings import AGENT_MESSAGE
from target_chatra_push.text_template import render_text
from target_chatra_push.values import InvalidRowError, canonical_json

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from target_chatra_push.mapping import MessageMapping

MAX_TEXT_LENGTH = 5000


@dataclass(frozen=True)
class Outbound:
    """The request one row becomes."""

    resource: str
    body: dict[str, t.Any]
    key: str

    @property
    def path(self) -> str:
        """The API path the request goes to."""
        return f"/{self.resource}/"

    @functools.cached_property
    def payload_hash(self) -> str:
        """Hash of what the client would see, to notice a changed message for a sent key.

        `receivedFrom` is left out: renaming the sender tag is no reason to message anyone again.
        """
        seen = {k: v for k, v in self.body.items() if k != "receivedFrom"}
        digest = hashlib.sha256(canonical_json([self.resource, seen]).encode())
        return digest.hexdigest()


def _describe_type(value: object) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        dict: "an object",
        list: "an array",
    }.get(type(value), f"a {type(value).__name__}")


def _client_id(mapping: MessageMapping, record: Mapping[str, t.Any]) -> str:
    prop = mapping.client_id_property
    value = record.get(prop)
    if isinstance(value, int) and not isinstance(value, bool):
        # Sites may set numeric client IDs; Chatra holds every ID as a string.
        value = str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidRowError("missing_client_id", f"no client ID: '{prop}' is missing or empty")
    if not isinstance(value, str):
        raise InvalidRowError(
            "wrong_type", f"wrong type: '{prop}' holds {_describe_type(value)}, not a string"
        )
    return value


def _text(mapping: MessageMapping, record: Mapping[str, t.Any]) -> str:
    if mapping.template is not None:
        text = render_text(mapping.template, record, MAX_TEXT_LENGTH)
    else:
        prop = mapping.text_property
        value = record.get(prop)
        if value is None:
            raise InvalidRowError("empty_text", f"empty text: '{prop}' is missing or null")
        if not isinstance(value, str):
            raise InvalidRowError(
                "wrong_type", f"wrong type: '{prop}' holds {_describe_type(value)}, not a string"
            )
        text = value
    if not text.strip():
        raise InvalidRowError("empty_text", "empty text: the message text is blank")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidRowError(
            "text_too_long",
            f"text too long: {len(text)} characters; Chatra takes at most {MAX_TEXT_LENGTH}",
        )
    return text


def _optional_id(record: Mapping[str, t.Any], prop: str | None, fallback: str | None) -> str | None:
    if prop is None:
        return fallback
    value = record.get(prop)
    if value is None or (isinstance(value, str) and not value.strip()):
        return fallback
    if not isinstance(value, str):
        raise InvalidRowError(
            "wrong_type", f"wrong type: '{prop}' holds {_describe_type(value)}, not a string"
        )
    return value


def _body(mapping: MessageMapping, record: Mapping[str, t.Any]) -> dict[str, t.Any]:
    body: dict[str, t.Any] = {
        "clientId": _client_id(mapping, record),
        "text": _text(mapping, record),
    }
    agent_id = _optional_id(record, mapping.agent_id_property, mapping.agent_id)
    if mapping.mode == AGENT_MESSAGE:
        if agent_id is not None:
            body["agentId"] = agent_id
        elif mapping.agent_email and mapping.agent_name:
            body["agentEmail"] = mapping.agent_email
            body["agentName"] = mapping.agent_name
        else:
            prop = mapping.agent_id_property
            raise InvalidRowError(
                "missing_agent", f"no agent: '{prop}' is empty and no fallback agent is set"
            )
    else:
        group_id = _optional_id(record, mapping.group_id_property, mapping.group_id)
        if agent_id is not None:
            body["agentId"] = agent_id
        elif group_id is not None:
            body["groupId"] = group_id
    if mapping.received_from:
        body["receivedFrom"] = mapping.received_from
    return body


def _check_encodable(body: Mapping[str, t.Any], key: str) -> None:
    try:
        key.encode("utf-8")
        for value in body.values():
            value.encode("utf-8")  # every body value is a string
    except UnicodeEncodeError:
        raise InvalidRowError(
            "not_unicode",
            "not valid Unicode: the text, client ID or key holds a lone surrogate (often an "
            "emoji cut in half upstream); fix the value in the source",
        ) from None


def build_outbound(
    mapping: MessageMapping,
    record: Mapping[str, t.Any],
    key_properties: Sequence[str],
) -> Outbound:
    """Build the request for one row.

    Args:
        mapping: The stream's resolved mapping settings.
        record: The row.
        key_properties: The stream's key properties, used when the mapping names no dedupe key.

    Raises:
        InvalidRowError: When the row cannot become a valid message.
    """
    body = _body(mapping, record)
    properties = key_properties_of(mapping, key_properties)
    client_id, text = body["clientId"], body["text"]
    key = dedupe_key(properties, record, client_id, text)
    _check_encodable(body, key)
    return Outbound(
        resource=mapping.resource,
        body=body,
        key=key,
    )


def key_properties_of(mapping: MessageMapping, key_properties: Sequence[str]) -> tuple[str, ...]:
    """The properties that key a stream's rows: `dedupe_key_properties`, else the stream's."""
    return mapping.dedupe_key_properties or tuple(key_properties)
