"""`export`, `prune` and `readers`: the commands that work on the store, not on HTTP.

`export` writes the events as the JSONL tap-chatra reads, `prune` removes old events up to
the slowest reader, `readers` lists (or forgets) the readers' positions.
"""

from __future__ import annotations

import datetime as dt
import json
import typing as t
from collections import Counter
from dataclasses import dataclass, field

from chatra_webhooks.events import stored_body

if t.TYPE_CHECKING:
    from chatra_webhooks.store import EventStore, Pruned, ReaderPosition


@dataclass
class Exported:
    """What `export_jsonl` wrote.

    Attributes:
        count: Events written.
        last_seq: The last `seq` read, written or skipped (`after` when none).
        repaired: Events written repaired, by repair (see `events.stored_body`).
        skipped: Events not written because they cannot be served as a JSON object, by
            reason.
    """

    count: int = 0
    last_seq: int = 0
    repaired: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)


def export_jsonl(store: EventStore, out: t.TextIO, after: int = 0) -> Exported:
    """Write each body after `after` as one JSON line, the format of `webhook_events_file`.

    Bodies are written again on one line each (Chatra may send indented JSON), served as the
    read API serves them: repaired when they are not strict JSON, skipped when they are no
    JSON object.
    """
    exported = Exported(last_seq=after)
    for event in store.iter_after(after):
        exported.last_seq = event.seq
        served = stored_body(event.body)
        if served.document is None:
            exported.skipped.update(served.repairs)
            continue
        exported.repaired.update(served.repairs)
        out.write(json.dumps(served.document, ensure_ascii=False, separators=(",", ":")) + "\n")
        exported.count += 1
    return exported


def prune_older_than(
    store: EventStore, days: float, *, past_readers: bool = False, now: dt.datetime | None = None
) -> Pruned:
    """Delete the events received more than `days` days ago that every reader has read."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    return store.prune(cutoff, past_readers=past_readers)


def prune_report(pruned: Pruned, days: float) -> list[str]:
    """What `prune` removed and what it kept, and why, in lines a person can act on."""
    lines = [f"deleted {pruned.deleted} events received more than {days:g} days ago"]
    slowest = pruned.slowest
    if pruned.unread_deleted:
        lines[0] += (
            f", {pruned.unread_deleted} of them not yet acknowledged by a reader (--past-readers)"
        )
    if pruned.kept and slowest is None:
        lines.append(
            f"kept {pruned.kept} older events: no reader has acknowledged any event yet "
            "(tap-chatra does on every read of the inbox); pass --past-readers to prune by "
            "age alone"
        )
    elif pruned.kept and slowest is not None:
        lines.append(
            f"kept {pruned.kept} older events after seq {slowest.acked_seq}, where reader "
            f"{slowest.name} stands (acknowledged {_when(slowest.acked_at)}); pass "
            "--past-readers to delete them anyway, or `chatra-webhooks readers --forget "
            f"{slowest.name}` if it no longer reads"
        )
    return lines


def reader_lines(readers: list[ReaderPosition]) -> list[str]:
    """One line per reader: its name, its position, and when it said so."""
    if not readers:
        return ["no reader has acknowledged any event yet"]
    width = max(len(reader.name) for reader in readers)
    return [
        f"{reader.name:<{width}}  up to seq {reader.acked_seq}, acknowledged "
        f"{_when(reader.acked_at)}"
        for reader in readers
    ]


def _when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
