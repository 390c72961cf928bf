"""`export` and `prune`: the store's contents as JSONL for tap-chatra, and old events removed."""

from __future__ import annotations

import datetime as dt
import json
import typing as t

if t.TYPE_CHECKING:
    from chatra_webhooks.store import EventStore


def export_jsonl(store: EventStore, out: t.TextIO, after: int = 0) -> tuple[int, int]:
    """Write each body after `after` as one JSON line, the format of `webhook_events_file`.

    Bodies are written again on one line each (Chatra may send indented JSON).

    Returns:
        How many events were written, and the last `seq` written (`after` when none).
    """
    count, last = 0, after
    for event in store.iter_after(after):
        document = json.loads(event.body)
        out.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")
        count, last = count + 1, event.seq
    return count, last


def prune_older_than(store: EventStore, days: float, now: dt.datetime | None = None) -> int:
    """Delete the events received more than `days` days ago; return how many."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    return store.prune(cutoff)
