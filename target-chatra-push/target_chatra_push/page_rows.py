r"""The rows of one run as the preview or report page shows them, kept until the page is written.

Rows go to an unnamed temporary file beside the page (never visible, gone when closed), so a
run of any size holds only the counts in memory. Each row is one line of JSON made safe to
sit inside a `<script>` element: `<`, `>` and `&` are written as `\u003c`, `\u003e` and
`\u0026`, so no row text can close the element (`</script>`) or open a comment (`<!--`);
`ensure_ascii` keeps lone surrogates and U+2028/U+2029 as escapes too.
"""

from __future__ import annotations

import json
import tempfile
import typing as t

from target_chatra_push.summary import Outcome
from target_chatra_push.values import json_default

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from target_chatra_push.rendering import Outbound

# More rows than this make a page too heavy for a browser; the rest are counted, not shown.
MAX_PAGE_ROWS = 100_000
# A dry run's would-be sends are shown as `send`, as in the JSONL preview.
SEND = "send"

_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def script_json(value: object) -> str:
    """JSON that can be placed inside a `<script>` element as it is."""
    return json.dumps(value, separators=(",", ":"), default=json_default).translate(_SCRIPT_SAFE)


def action_of(outcome: Outcome) -> str:
    """The page's name for an outcome."""
    return SEND if outcome is Outcome.PREVIEWED else outcome.value


def delivered_action(*, dry_run: bool) -> str:
    """The action of the rows that go out (or would): the ones shown as chat bubbles."""
    return action_of(Outcome.PREVIEWED if dry_run else Outcome.SENT)


def actions(*, dry_run: bool) -> list[str]:
    """The actions a run of this kind can count: what goes out first, then the summary's order."""
    impossible = {Outcome.SENT, Outcome.REJECTED} if dry_run else {Outcome.PREVIEWED}
    delivered = delivered_action(dry_run=dry_run)
    rest = [action_of(o) for o in Outcome if o not in impossible and action_of(o) != delivered]
    return [delivered, *rest]


def sender_of(outbound: Outbound) -> str:
    """Who the client will see as the sender, and the kind of message."""
    body = outbound.body
    if outbound.resource == "messages":
        kind = "Agent message"
        if "agentId" in body:
            sender = f"agent {body['agentId']}"
        else:
            sender = f"{body.get('agentName')} <{body.get('agentEmail')}>"
    else:
        kind = "Pushed message"
        if "agentId" in body:
            sender = f"agent {body['agentId']}"
        elif "groupId" in body:
            sender = f"group {body['groupId']}"
        else:
            sender = "an agent Chatra picks"
    return f"{kind} from {sender}"


class PageRows:
    """Every row of a run in the page's form, with counts per stream and action."""

    def __init__(self, folder: Path) -> None:
        """Rows are kept in a temporary file in `folder`, made on first use."""
        self._folder = folder
        self._spool: t.TextIO | None = None
        self.counts: dict[str, dict[str, int]] = {}
        self.kept = 0
        self.left_out = 0
        self.failure: str | None = None

    def add(
        self,
        stream: str,
        outcome: Outcome,
        key: str | None,
        outbound: Outbound | None = None,
        reason: str | None = None,
    ) -> None:
        """Keep one row: its stream, client, key, action, text, sender and reason."""
        action = action_of(outcome)
        per_stream = self.counts.setdefault(stream, {})
        per_stream[action] = per_stream.get(action, 0) + 1
        if self.kept >= MAX_PAGE_ROWS or self.failure is not None:
            self.left_out += 1
            return
        body = outbound.body if outbound is not None else {}
        row = [
            stream,
            body.get("clientId") or "",
            key or "",
            action,
            body.get("text") or "",
            sender_of(outbound) if outbound is not None else "",
            reason or "",
        ]
        try:
            if self._spool is None:
                self._folder.mkdir(parents=True, exist_ok=True)
                # Closed by close(), which the delivery calls at the end of every run.
                self._spool = tempfile.TemporaryFile("w+", encoding="utf-8", dir=self._folder)  # noqa: SIM115
            self._spool.write(script_json(row) + "\n")
        except OSError as exc:
            # The page is a view: a full disk or a bad folder costs the page, never the run.
            self.failure = f"{self._folder}: {exc.strerror or exc}"
            self.left_out += 1
            return
        self.kept += 1

    def table_rows(self) -> Iterator[list[str]]:
        """The kept rows, one list of cells each, for the page's table without JavaScript."""
        if self._spool is None:
            return
        self._spool.seek(0)
        for line in self._spool:
            yield json.loads(line)

    def script_lines(self) -> Iterator[str]:
        """The kept rows as one JSON array, in pieces, ready for a `<script>` element."""
        yield "["
        if self._spool is not None:
            self._spool.seek(0)
            for number, line in enumerate(self._spool):
                yield ("," if number else "") + line.rstrip("\n")
        yield "]"

    def close(self) -> None:
        """Drop the kept rows."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None
