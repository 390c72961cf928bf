"""The keys one run's input has held: a key seen again is a duplicate, or a conflict.

Two rows with one key and different messages (client, text or sender) cannot both be sent
under it, and neither can be told to be the right one. Rows are settled as they come, so the
first was handled before the second was read: the second is refused, and its reason names
both input lines so that the key properties can be fixed.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from target_chatra_push.values import InvalidRowError

if t.TYPE_CHECKING:
    from target_chatra_push.rendering import Outbound
    from target_chatra_push.summary import Outcome


@dataclass
class FirstRow:
    """The first row of the input with a key: its message, line, and what happened to it."""

    payload_hash: str
    line: int | None
    outcome: Outcome | None = None


def _lines(first: int | None, then: int | None) -> str:
    if first is None or then is None:
        return "two rows of the input"
    return f"lines {first} and {then} of the input"


class InputKeys:
    """The first row of each (stream, key) this run has read."""

    def __init__(self) -> None:
        self._first: dict[tuple[str, str], FirstRow] = {}

    def first(self, stream: str, outbound: Outbound, line: int | None) -> FirstRow | None:
        """The row that held this key before, if any; else remember this row as the first."""
        slot = (stream, outbound.key)
        earlier = self._first.get(slot)
        if earlier is None:
            self._first[slot] = FirstRow(outbound.payload_hash, line)
        return earlier

    def remember_outcome(self, stream: str, key: str, outcome: Outcome) -> None:
        """Note what happened to the first row with this key."""
        self._first[(stream, key)].outcome = outcome


def conflict(first: FirstRow, outbound: Outbound, line: int | None) -> InvalidRowError | None:
    """Why a row repeating a key cannot be sent (its message differs); None if it is the same."""
    if first.payload_hash == outbound.payload_hash:
        return None
    happened = first.outcome.value if first.outcome else "not settled"
    return InvalidRowError(
        "key_conflict",
        f"key conflict: {_lines(first.line, line)} have the key {outbound.key} but different "
        f"messages (client, text or sender); the first was {happened}, this one is not sent. "
        "The key properties do not identify one message: check dedupe_key_properties",
    )
