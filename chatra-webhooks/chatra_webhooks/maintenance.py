"""`export` and `prune`: the store's contents as JSONL for tap-chatra, and old events removed."""

from __future__ import annotations

import datetime as dt
import json
import typing as t
from collections import Counter
from dataclasses import dataclass, field

from chatra_webhooks.events import stored_body

if t.TYPE_CHECKING:
    from chatra_webhooks.store import EventStore


@dataclass
class Exported:
    """What `export_jsonl` wrote.

    Attributes:
        count: Events written.
        last_seq: The last `seq` read, written or skipped (`after` when none).
        repaired: Events written repaired, by repair (see `events.stored_body`).
        skipped: Events not written because they are no JSON object, by reason.
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


def prune_older_than(store: EventStore, days: float, now: dt.datetime | None = None) -> int:
    """Delete the events received more than `days` days ago; return how many."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    return store.prune(cutoff)
