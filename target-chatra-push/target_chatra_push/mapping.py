"""Per-stream mapping settings: the top-level ones, overridden by `stream_settings`.

Every mapping is resolved and checked when the target starts, templates included, so a
mistake stops the run with a clear message before anything is sent.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from pathlib import Path

import jinja2

from target_chatra_push.settings import AGENT_MESSAGE, MAPPING_DEFAULTS, MODES, PUSHED_MESSAGE
from target_chatra_push.text_template import compile_template

if t.TYPE_CHECKING:
    from collections.abc import Mapping

_MAPPING_KEYS = (
    "mode",
    "client_id_property",
    "text_property",
    "text_template",
    "agent_id",
    "agent_id_property",
    "group_id",
    "group_id_property",
    "agent_email",
    "agent_name",
    "received_from",
    "dedupe_key_properties",
    "sent_ids_path",
)


class MappingError(ValueError):
    """Mapping settings that cannot work; the message names the setting and the fix."""


@dataclass(frozen=True)
class MessageMapping:
    """How rows of one stream become messages."""

    mode: str
    client_id_property: str
    text_property: str
    template: jinja2.Template | None
    agent_id: str | None
    agent_id_property: str | None
    group_id: str | None
    group_id_property: str | None
    agent_email: str | None
    agent_name: str | None
    received_from: str | None
    dedupe_key_properties: tuple[str, ...]
    sent_ids_path: Path | None

    @property
    def resource(self) -> str:
        """The Chatra resource the messages are created in."""
        return "messages" if self.mode == AGENT_MESSAGE else "pushedMessages"


def _text(settings: Mapping[str, t.Any], key: str) -> str | None:
    value = settings.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value)


def _check(settings: Mapping[str, t.Any], where: str) -> None:
    mode = settings["mode"]
    if mode not in MODES:
        msg = f"{where}mode must be one of {', '.join(MODES)}, got {mode!r}."
        raise MappingError(msg)
    has_agent = bool(_text(settings, "agent_id") or _text(settings, "agent_id_property"))
    has_group = bool(_text(settings, "group_id") or _text(settings, "group_id_property"))
    email, name = _text(settings, "agent_email"), _text(settings, "agent_name")
    if mode == PUSHED_MESSAGE:
        if email or name:
            msg = (
                f"{where}agent_email and agent_name apply to mode agent_message only; for "
                "pushed messages name the sender with agent_id or group_id."
            )
            raise MappingError(msg)
        if has_agent and has_group:
            msg = (
                f"{where}a pushed message is sent by an agent or by a group, not both: set "
                "agent_id/agent_id_property or group_id/group_id_property."
            )
            raise MappingError(msg)
        return
    if has_group:
        msg = f"{where}group_id and group_id_property apply to mode pushed_message only."
        raise MappingError(msg)
    if bool(email) != bool(name):
        msg = f"{where}agent_email and agent_name go together; set both or neither."
        raise MappingError(msg)
    if not has_agent and not email:
        msg = (
            f"{where}mode agent_message needs a sender: set agent_id (or agent_id_property), "
            "or agent_email and agent_name."
        )
        raise MappingError(msg)


def _template(settings: Mapping[str, t.Any], where: str) -> jinja2.Template | None:
    source = settings.get("text_template")
    if source is None or source == "":
        return None
    try:
        return compile_template(source)
    except jinja2.TemplateSyntaxError as exc:
        msg = f"{where}text_template does not compile: line {exc.lineno}: {exc.message}."
        raise MappingError(msg) from None


def merged_settings(config: Mapping[str, t.Any], stream_name: str | None) -> dict[str, t.Any]:
    """The mapping settings for a stream: defaults, then top level, then its overrides."""
    merged: dict[str, t.Any] = dict(MAPPING_DEFAULTS)
    merged.update({k: config[k] for k in _MAPPING_KEYS if config.get(k) is not None})
    overrides = (config.get("stream_settings") or {}).get(stream_name) if stream_name else None
    if overrides:
        if "text_property" in overrides and "text_template" not in overrides:
            # A stream naming its own text column opts out of a top-level template.
            merged.pop("text_template", None)
        merged.update(overrides)
    return merged


def resolve_mapping(config: Mapping[str, t.Any], stream_name: str | None) -> MessageMapping:
    """Resolve and check the mapping of one stream (None: the top-level settings).

    Raises:
        MappingError: When the settings contradict each other or the template does not compile.
    """
    where = f"stream_settings.{stream_name}: " if stream_name else ""
    settings = merged_settings(config, stream_name)
    _check(settings, where)
    sent_ids = _text(settings, "sent_ids_path")
    return MessageMapping(
        mode=settings["mode"],
        client_id_property=settings["client_id_property"],
        text_property=settings["text_property"],
        template=_template(settings, where),
        agent_id=_text(settings, "agent_id"),
        agent_id_property=_text(settings, "agent_id_property"),
        group_id=_text(settings, "group_id"),
        group_id_property=_text(settings, "group_id_property"),
        agent_email=_text(settings, "agent_email"),
        agent_name=_text(settings, "agent_name"),
        received_from=_text(settings, "received_from"),
        dedupe_key_properties=tuple(settings.get("dedupe_key_properties") or ()),
        sent_ids_path=Path(sent_ids) if sent_ids else None,
    )


class StreamMappings:
    """Every stream's mapping, resolved once when the target starts."""

    def __init__(self, config: Mapping[str, t.Any]) -> None:
        """Resolve the top level and every stream under `stream_settings`.

        Problems are collected in `errors` (one line each) for the target to report together.
        """
        self.errors: list[str] = []
        self._default: MessageMapping | None = None
        self._per_stream: dict[str, MessageMapping] = {}
        names: list[str | None] = [None, *(config.get("stream_settings") or {})]
        for name in names:
            try:
                mapping = resolve_mapping(config, name)
            except MappingError as exc:
                self.errors.append(str(exc))
                continue
            if name is None:
                self._default = mapping
            else:
                self._per_stream[name] = mapping

    def for_stream(self, stream_name: str) -> MessageMapping:
        """The mapping of a stream: its own under `stream_settings`, else the top level."""
        mapping = self._per_stream.get(stream_name, self._default)
        if mapping is None:
            msg = f"No valid mapping for stream {stream_name!r}: {'; '.join(self.errors)}"
            raise MappingError(msg)
        return mapping
