"""Compact per-ID maps for STATE, grouped by the minute of the fetch, each group's JSON kept ready.

A map is one JSON object from UTC minute to the IDs of that minute: a list, or an object from
ID to the fingerprint of the version last emitted (clients). Each ID is written once, the time
once per minute: about the ID's length plus 3 bytes (plus 9 with a fingerprint).

    {"2026-11-30T02:45": ["XGDsxHtLppJTJ3vZk", "jEQ2bP3n6zyWwKM5e"]}
    {"2026-11-30T02:45": {"vfg1y4h4...": "AbCdEf"}}

The layout before it, `{"<id>": 1700000000}` or `{"<id>": "1700000000:AbCdEf"}`, is read too,
entry by entry, so a map that Meltano merged from an old complete STATE and a new partial one
still reads. When an ID appears more than once, the newest entry wins.

Every STATE message carries every map whole, and a million IDs make about 20 MB of JSON; a
map therefore keeps each minute's JSON fragment and re-encodes only the minutes that changed
since the last STATE. It sits in the SDK's state dict as a `simplejson.RawJSON`, so the SDK's
serializer (simplejson) emits the fragments as they are, and the tap's writer
(state_flush.StateSizeWriter) writes them one by one. The SDK also compares each STATE with the
last one and deep-copies it: a map compares by its fragments and copies to a `Frozen` that
shares them, instead of walking a million entries each time.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import typing as t
from functools import partial
from itertools import chain, compress, repeat

import simplejson  # type: ignore[import-untyped]  # no stubs; the SDK writes STATE with it
from typing_extensions import override

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Iterable, Iterator

MINUTE = 60
_KEY_FORMAT = "%Y-%m-%dT%H:%M"
_KEY_LENGTH = 16
_LATEST = 253_402_300_800  # 10000-01-01T00:00Z


def minute_key(minute: int) -> str:
    """The JSON key of a minute (minutes since the epoch): ``2026-11-30T02:45``."""
    return dt.datetime.fromtimestamp(minute * MINUTE, dt.UTC).strftime(_KEY_FORMAT)


def parse_minute_key(key: str) -> int | None:
    """Minutes since the epoch for a key like ``2026-11-30T02:45``, or None."""
    if len(key) != _KEY_LENGTH:
        return None
    try:
        moment = dt.datetime.strptime(key, _KEY_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return int(moment.timestamp()) // MINUTE


def _dumps(value: object) -> str:
    # ASCII only: an ID with any character, even a lone surrogate, encodes and prints.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def epoch_seconds(value: object) -> int | None:
    """A time from STATE as whole epoch seconds, or None for anything else.

    Only 1970 to 9999: a time outside that cannot be written back as a minute key.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value < _LATEST:  # also NaN, which compares false
        return None
    return int(value)


def _legacy_entry(value: object) -> tuple[int, str | None] | None:
    """(seconds, fingerprint) of an entry of the earlier layout: 1700000000 or "1700000000:fp"."""
    if isinstance(value, str):
        head, _, fp = value.partition(":")
        seconds = epoch_seconds(int(head)) if head.isascii() and head.isdigit() else None
        return None if seconds is None else (seconds, fp or None)
    seconds = epoch_seconds(value)
    return None if seconds is None else (seconds, None)


def read_ids(value: object) -> dict[str, tuple[int, str | None]]:
    """Every ID in a map of either layout: ID -> (epoch seconds, fingerprint or None).

    Seconds are the start of the minute for the grouped layout. Unreadable parts are left out.
    """
    found: dict[str, tuple[int, str | None]] = {}
    for record_id, minute, fp in _entries(value):
        if record_id not in found or found[record_id][0] <= minute * MINUTE:
            found[record_id] = (minute * MINUTE, fp)
    return found


def _entries(value: object) -> Iterable[tuple[str, int, str | None]]:
    """(ID, minute, fingerprint) for every readable entry of a map, in either layout."""
    for minute, ids, fps in _groups(value):
        yield from ((record_id, minute, fps.get(record_id)) for record_id in ids)


def _groups(value: object) -> list[tuple[int, list[str], dict[str, str]]]:
    """(minute, IDs, fingerprints) of every readable group of a map, oldest first.

    An entry of the earlier layout becomes part of the group of its minute.
    """
    if not isinstance(value, dict):
        return []
    groups: list[tuple[int, list[str], dict[str, str]]] = []
    legacy: dict[int, tuple[list[str], dict[str, str]]] = {}
    for key, item in value.items():
        if isinstance(item, list | dict):
            minute = parse_minute_key(key)
            if minute is None:
                continue
            if isinstance(item, list):
                groups.append((minute, [i for i in item if isinstance(i, str)], {}))
            else:
                fps = {i: fp for i, fp in item.items() if isinstance(fp, str) and fp}
                groups.append((minute, list(item), fps))
        elif (entry := _legacy_entry(item)) is not None:
            ids, fps = legacy.setdefault(entry[0] // MINUTE, ([], {}))
            ids.append(key)
            if entry[1]:
                fps[key] = entry[1]
    groups.extend((minute, ids, fps) for minute, (ids, fps) in legacy.items())
    groups.sort(key=lambda group: group[0])
    return groups


class Encoded(simplejson.RawJSON):
    """A JSON object or list kept as encoded parts: compared, copied and written by them.

    simplejson (the SDK's writer) writes `encoded_json` as it is; the SDK's StateWriter
    compares each STATE with the last (==) and keeps a deep copy of it, which here is a
    `Frozen` sharing the parts, not a walk over every ID.
    """

    def frozen(self) -> Frozen:
        """The value as it is now."""
        raise NotImplementedError

    @property
    def encoded_json(self) -> str:
        """The value as JSON."""
        frozen = self.frozen()
        return frozen.opening + ",".join(frozen.parts) + frozen.closing

    def pieces(self) -> Iterator[str]:
        """`encoded_json` in pieces, so that a large value is written without being joined."""
        frozen = self.frozen()
        yield frozen.opening
        for position, part in enumerate(frozen.parts):
            if position:
                yield ","
            yield part
        yield frozen.closing

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Encoded):
            mine, theirs = self.frozen(), other.frozen()
            return (mine.opening, mine.parts) == (theirs.opening, theirs.parts)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal by content, like the dict it stands for

    def __deepcopy__(self, memo: dict[int, t.Any]) -> Frozen:
        return self.frozen()


class Frozen(Encoded):
    """A map or list as it was at one moment; its parts are shared with the live one."""

    def __init__(self, opening: str, parts: tuple[str, ...], closing: str) -> None:
        self.opening = opening
        self.parts = parts
        self.closing = closing

    def frozen(self) -> Frozen:
        """Itself: it does not change."""
        return self


class IdMap(Encoded):
    """When each ID was fetched (or found missing), to the minute, with an optional fingerprint."""

    def __init__(self) -> None:
        self._minute_of: dict[str, int] = {}
        self._fingerprint_of: dict[str, str] = {}
        self._minutes: dict[int, int] = {}  # one int object per minute, shared by its IDs
        self._fragments: dict[int, str] = {}  # minute -> '"<key>":[...]', for clean minutes
        self._changed: dict[int, list[str]] = {}  # minute -> IDs put there since last encoded
        self._frozen: Frozen | None = None

    @classmethod
    def load(cls, value: object, *, name: str, logger: logging.Logger) -> IdMap:
        """A map from a STATE value of either layout; anything else starts it afresh."""
        loaded = cls()
        if value is None:
            return loaded
        if not isinstance(value, dict):
            logger.warning("STATE key '%s' is not an object; starting it afresh.", name)
            return loaded
        # Oldest first, so that a newer entry of an ID replaces an older one.
        for minute, ids, fps in _groups(value):
            shared = loaded._minutes.setdefault(minute, minute)
            loaded._minute_of.update(zip(ids, repeat(shared)))
            if loaded._fingerprint_of:
                for record_id in ids:
                    loaded._fingerprint_of.pop(record_id, None)
            loaded._fingerprint_of.update(fps)
            if shared in loaded._changed:
                loaded._changed[shared].extend(ids)
            else:
                loaded._changed[shared] = ids  # the group's own list: no copy of a million
        return loaded

    def __len__(self) -> int:
        return len(self._minute_of)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._minute_of

    def __iter__(self) -> t.Iterator[str]:
        return iter(self._minute_of)

    def written_ids(self) -> list[str]:
        """The IDs in the order the map's JSON lists them: by minute, oldest first.

        Not the order of iteration, which keeps an ID where it was first put. A map read back
        from a STATE iterates in this order, so a plan made in it is made again alike from
        that STATE (run_cursor.py).
        """
        ids: list[str] = []
        for part in self.frozen().parts:
            ids.extend(json.loads("{" + part + "}").popitem()[1])
        return ids

    def minute(self, record_id: str) -> int | None:
        """The minute of the ID's entry, or None."""
        return self._minute_of.get(record_id)

    def fingerprint(self, record_id: str) -> str | None:
        """The fingerprint stored with the ID, or None."""
        return self._fingerprint_of.get(record_id)

    def put(self, record_id: str, minute: int, fingerprint: str | None = None) -> None:
        """Record the ID at a minute (moving it from any earlier one)."""
        previous = self._minute_of.get(record_id)
        if previous is not None and previous != minute:
            self._changed.setdefault(previous, [])
        minute = self._minutes.setdefault(minute, minute)
        self._minute_of[record_id] = minute
        if fingerprint:
            self._fingerprint_of[record_id] = fingerprint
        else:
            self._fingerprint_of.pop(record_id, None)
        self._changed.setdefault(minute, []).append(record_id)
        self._frozen = None

    def remove(self, record_id: str) -> None:
        """Forget the ID."""
        previous = self._minute_of.pop(record_id, None)
        if previous is not None:
            self._fingerprint_of.pop(record_id, None)
            self._changed.setdefault(previous, [])
            self._frozen = None

    def _encode_minute(self, minute: int, added: list[str]) -> str | None:
        """The fragment of one minute: its earlier members still there, then the new ones."""
        fragment = self._fragments.get(minute)
        earlier: Iterable[str] = json.loads("{" + fragment + "}").popitem()[1] if fragment else ()
        # Only the IDs whose entry is still this minute (C-level loops: a minute can hold
        # a million IDs after an import).
        candidates = list(dict.fromkeys(chain(earlier, added)))
        here = map(partial(operator.eq, minute), map(self._minute_of.get, candidates))
        members = list(compress(candidates, here))
        if not members:
            return None
        fps = self._fingerprint_of
        if fps and any(map(fps.__contains__, members)):
            body = _dumps(dict(zip(members, map(fps.get, members, repeat("")), strict=True)))
        else:
            body = _dumps(members)
        return _dumps(minute_key(minute)) + ":" + body

    @override
    def frozen(self) -> Frozen:
        """The map as it is now; only the minutes changed since the last call are encoded."""
        if self._frozen is None:
            for minute, added in self._changed.items():
                fragment = self._encode_minute(minute, added)
                if fragment is None:
                    self._fragments.pop(minute, None)
                else:
                    self._fragments[minute] = fragment
            self._changed.clear()
            ordered = tuple(self._fragments[minute] for minute in sorted(self._fragments))
            self._frozen = Frozen("{", ordered, "}")
        return self._frozen
