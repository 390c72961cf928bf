"""How often to write STATE: as often as asked, less often as it grows, never too seldom.

Meltano stores every STATE message whole (its system database, or S3/GCS), and each one
carries every ID's entry: at 10 s apart a 28-hour backfill of 100,000 IDs would write some
10,000 of them, tens of GB for a final STATE of 2 MB. The interval therefore grows with the
size of the last STATE so that about `bytes_per_hour` are written, between the two bounds:
`min_seconds` (state_flush_seconds) and `max_seconds`, the most work a killed run can lose.

A STATE that says nothing new is not written at all: Meltano already holds the state the run
started from, so a run that fetches nothing writes no STATE, and one that changes little writes
one at the end (`StateSizeWriter`).
"""

from __future__ import annotations

import copy
import logging
import sys
import time
import typing as t
from dataclasses import dataclass

from singer_sdk.io_base import SingerWriter
from singer_sdk.singerlib import StateMessage
from singer_sdk.singerlib.json import serialize_json
from typing_extensions import override

from tap_chatra.id_map import Encoded

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from singer_sdk import Stream
    from singer_sdk.singerlib import Message

#: From this size on, each STATE is logged with its size.
LOGGED_STATE_BYTES = 1_000_000


@dataclass(frozen=True)
class FlushSchedule:
    """The interval between STATE messages, given the size of the last one."""

    min_seconds: float
    max_seconds: float
    bytes_per_hour: float

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> FlushSchedule:
        """The schedule the tap's settings ask for."""
        return cls(
            min_seconds=float(config.get("state_flush_seconds", 10)),
            max_seconds=float(config.get("state_max_flush_seconds", 300)),
            bytes_per_hour=float(config.get("state_bytes_per_hour", 5_000_000)),
        )

    def interval(self, state_bytes: int) -> float:
        """Seconds until the next STATE after one of `state_bytes`."""
        within_budget = state_bytes * 3600 / self.bytes_per_hour if self.bytes_per_hour else 0.0
        return max(self.min_seconds, min(self.max_seconds, within_budget))


class FlushTimer:
    """Writes STATE when the schedule says, timed by the size of the last one.

    `flush` writes a STATE and returns the size in bytes of the last STATE written, from
    which the schedule sets the time of the next one; the first one is timed by
    `state_bytes`, the size of the last STATE before this timer.
    """

    def __init__(
        self,
        flush: Callable[[], int],
        schedule: FlushSchedule,
        *,
        state_bytes: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._flush = flush
        self._schedule = schedule
        self._clock = clock
        self._next = clock() + schedule.interval(state_bytes)

    def due_in(self) -> float:
        """Seconds until a STATE is due."""
        return max(0.0, self._next - self._clock())

    def run_due(self) -> None:
        """Write STATE if it is due."""
        if self._clock() >= self._next:
            size = self._flush()
            self._next = self._clock() + self._schedule.interval(size)


def write_state_now(stream: Stream) -> None:
    """Have the SDK write a STATE for `stream` now, covering every record written so far.

    The one place that changes SDK behaviour through its internals. The SDK writes STATE
    only every `STATE_MSG_FREQUENCY` (10,000) records and at the end of a stream, and only
    if a RECORD was written since the last one (`state_manager.is_flushed`). Per-ID state
    also changes without a RECORD (404s, unchanged clients), and every stream must reach
    Meltano every few seconds of an hours-long run, so this marks the state unflushed and
    calls the SDK's own writer, which still skips a STATE equal to the last one written.
    tests/test_sdk_internals.py fails if an SDK upgrade changes either.
    """
    stream.state_manager.is_flushed = False
    stream._write_state_message()


def essence(value: object) -> object:
    """What a STATE value says: the value without its empty objects (and empty per-ID maps).

    The SDK adds an empty bookmark for every stream it syncs, and the tap empty maps to its
    bookmarks; a stream reads an empty object as it reads none, so they change nothing.
    Per-ID maps come out frozen: compared by their encoded minutes, shared, never walked.
    """
    if isinstance(value, Encoded):
        frozen = value.frozen()
        return frozen if frozen.parts else None
    if isinstance(value, dict):
        kept = {key: part for key, item in value.items() if (part := essence(item)) is not None}
        return kept or None
    return copy.deepcopy(value)


def state_pieces(value: object) -> Iterator[str]:
    """A STATE message (as a dict) as JSON, in pieces: the per-ID maps are never joined.

    The same JSON as the SDK's writer makes: its serializer for everything but the maps.
    """
    if isinstance(value, Encoded):
        yield from value.pieces()
    elif isinstance(value, dict):
        yield "{"
        for position, (key, item) in enumerate(value.items()):
            yield ("," if position else "") + serialize_json(str(key)) + ":"
            yield from state_pieces(item)
        yield "}"
    else:
        yield serialize_json(value)


class StateSizeWriter(SingerWriter):
    """The SDK's writer, but STATE goes out in pieces, its size noted, and logged above 1 MB.

    A STATE holds every ID; joined into one string, then one line, it would briefly take two
    more copies of itself (40 MB at a million IDs). A STATE whose `essence` is that of the
    last one written, or of the state the run started from, is not written: at a million IDs
    each one is 20 MB that Meltano would store again.
    """

    logger = logging.getLogger("tap-chatra")

    def __init__(self) -> None:
        super().__init__()
        #: Bytes of the last STATE line written, or of the state the run started from.
        self.last_state_bytes = 0
        #: How many STATE messages were not written because they said nothing new.
        self.unchanged = 0
        self._held: object = None

    def started_from(self, state: Mapping[str, t.Any]) -> None:
        """Meltano holds this state already (the run's `--state`): no STATE repeats it.

        Its size also times the run's first STATE (FlushSchedule), as if it had been written.
        """
        self._held = essence(state)
        self.last_state_bytes = sum(map(len, state_pieces(_message(state)))) + 1

    @override
    def write_message(self, message: Message) -> None:
        if not isinstance(message, StateMessage):
            super().write_message(message)
            return
        said = essence(message.value)
        if said == self._held:
            self.unchanged += 1
            return
        size = 0
        for piece in state_pieces(message.to_dict()):
            sys.stdout.write(piece)
            # The SDK's JSON escapes every non-ASCII character, so characters are bytes.
            size += len(piece)
        sys.stdout.write("\n")
        sys.stdout.flush()
        self._held = said
        self.last_state_bytes = size + 1
        if self.last_state_bytes >= LOGGED_STATE_BYTES:
            self.logger.info("STATE written: %.1f MB.", self.last_state_bytes / 1e6)


def _message(state: Mapping[str, t.Any]) -> dict[str, t.Any]:
    return StateMessage(value=state).to_dict()
