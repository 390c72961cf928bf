"""Reading Singer messages: each line checked, so that bad input ends the run with one line.

The SDK's reader ends bad input in a traceback (and logs the line, which may hold personal
data): a line that is not JSON, a message without its fields, a RECORD before its SCHEMA. This
reader names the line number and what is wrong, never the values, and hands that to the
target, which stops the run the way every stop goes: the summary of what was done, the ledger
closed cleanly, a non-zero exit. Blank lines carry nothing and are skipped. BATCH messages
(rows in files the tap wrote) are refused by name: their rows would skip the per-row checks
this target makes before each send.
"""

from __future__ import annotations

import json
import typing as t
from collections import Counter

from singer_sdk.exceptions import InvalidJSONSchema, RecordsWithoutSchemaException
from singer_sdk.singerlib.encoding.simple import SimpleSingerReader
from singer_sdk.singerlib.json import deserialize_json

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

RECORD, SCHEMA, STATE, ACTIVATE_VERSION, BATCH = (
    "RECORD",
    "SCHEMA",
    "STATE",
    "ACTIVATE_VERSION",
    "BATCH",
)


class BadInputError(Exception):
    """The input is not Singer this target can read; the message names the line."""


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _check_record(message: Mapping[str, t.Any]) -> str | None:
    if not _is_text(message.get("stream")):
        return "a RECORD message needs a stream name ('stream')"
    if not isinstance(message.get("record"), dict):
        return "a RECORD message needs its row as a JSON object ('record')"
    return None


def _check_schema(message: Mapping[str, t.Any]) -> str | None:
    if not _is_text(message.get("stream")):
        return "a SCHEMA message needs a stream name ('stream')"
    schema = message.get("schema")
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return "a SCHEMA message needs a JSON schema with 'properties' ('schema')"
    keys = message.get("key_properties")
    if keys is not None and not (isinstance(keys, list) and all(_is_text(k) for k in keys)):
        return "'key_properties' of a SCHEMA message must be a list of property names"
    return None


def _check_state(message: Mapping[str, t.Any]) -> str | None:
    return None if "value" in message else "a STATE message needs its state ('value')"


def _check_activate_version(message: Mapping[str, t.Any]) -> str | None:
    if not _is_text(message.get("stream")) or "version" not in message:
        return "an ACTIVATE_VERSION message needs 'stream' and 'version'"
    return None


_CHECKS: dict[str, Callable[[Mapping[str, t.Any]], str | None]] = {
    RECORD: _check_record,
    SCHEMA: _check_schema,
    STATE: _check_state,
    ACTIVATE_VERSION: _check_activate_version,
}


def problem_of(message: object) -> str | None:
    """What is wrong with one parsed line, in words that quote no value; None if nothing."""
    if not isinstance(message, dict):
        return "it is not a Singer message (a JSON object was expected)"
    kind = message.get("type")
    if kind == BATCH:
        return (
            "it is a BATCH message, which target-chatra-push does not read: let the tap send "
            "RECORD messages (turn its batch_config off)"
        )
    check = _CHECKS.get(kind) if isinstance(kind, str) else None
    if check is None:
        return (
            "it has no known message type ('type' must be RECORD, SCHEMA, STATE or "
            "ACTIVATE_VERSION)"
        )
    return check(message)


class SingerInput(SimpleSingerReader):
    """The target's reader: counts lines, and turns bad input into `BadInputError`."""

    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0
        """The number of the line being handled (1 for the first)."""
        self.on_bad_input: Callable[[str], t.NoReturn] | None = None
        """Ends the run at bad input, given the line that says what is wrong."""
        self.on_failure: Callable[[], None] | None = None
        """Called when handling a message fails unexpectedly, before the error goes on."""

    def _bad(self, what: str) -> BadInputError:
        return BadInputError(f"Line {self.line_number} of the input is bad: {what}.")

    def _parse(self, line: str) -> dict[str, t.Any]:
        try:
            message = deserialize_json(line)
        except json.JSONDecodeError as exc:
            raise self._bad(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        except ValueError:  # an integer with more digits than Python reads
            raise self._bad("a number in it is too long to read") from None
        problem = problem_of(message)
        if problem is not None:
            raise self._bad(problem)
        return message

    def process_lines(
        self,
        file_input: t.IO[str] | None,
        callbacks: dict[str, Callable[[dict[str, t.Any]], None]],
    ) -> t.Counter[str]:
        """Handle each message in turn; bad input goes to `on_bad_input`.

        Raises:
            BadInputError: At the first line that is not a message this target can read, or
                that the SDK refuses (a RECORD before its SCHEMA, a schema that is not
                valid), when `on_bad_input` is not set.
        """
        try:
            return self._process(file_input, callbacks)
        except BadInputError as bad:
            if self.on_bad_input is None:
                raise
            self.on_bad_input(str(bad))
        except Exception:
            if self.on_failure is not None:
                self.on_failure()
            raise

    def _process(
        self,
        file_input: t.IO[str] | None,
        callbacks: dict[str, Callable[[dict[str, t.Any]], None]],
    ) -> t.Counter[str]:
        counts: t.Counter[str] = Counter()
        for number, line in enumerate(file_input or self.default_input, start=1):
            self.line_number = number
            if not line.strip():
                continue
            message = self._parse(line)
            kind = message["type"]
            try:
                callbacks[kind](message)
            except RecordsWithoutSchemaException:
                stream = message["stream"]
                raise self._bad(f"a RECORD of stream {stream} came before its SCHEMA") from None
            except InvalidJSONSchema as exc:
                what = " ".join(str(exc).split())[:200]
                raise self._bad(f"the SCHEMA is not a valid JSON schema: {what}") from None
            counts[kind] += 1
        return counts
