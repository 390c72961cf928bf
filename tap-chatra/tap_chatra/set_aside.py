"""Set aside, never block: one stream's failing IDs, and when failures become systemic.

An ID whose fetch still fails after its retries is recorded in state as failing and retried
on a later run; the run goes on with every other ID. Only when most IDs fail is the fault
taken to be the API, the network or the settings, and the run stopped; the IDs it set aside
are then not held against them. An ID that was already failing before this run and fails again
says nothing new, so it never counts towards that.
"""

from __future__ import annotations

from collections import deque

#: Mid-stream, the run stops once at least this many of the last `WINDOW` fresh answers
#: failed and they are most of them; at the stream's end, a majority of all fresh answers.
MIN_FAILURES = 5
WINDOW = 10
#: How many set-aside IDs the summary names; the rest are counted.
MAX_LISTED = 20


class SetAsideLog:
    """The IDs one stream set aside in this run, and the recent outcomes of fresh IDs."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.reasons: dict[str, str] = {}
        self.first_failure = ""
        self._recent: deque[bool] = deque(maxlen=WINDOW)
        self._fresh_answered = 0
        self._fresh_failed = 0

    def answered(self) -> None:
        """Count an ID that answered (a record or a 404 or a rejection): not a failure."""
        self._fresh_answered += 1
        self._recent.append(False)

    def set_aside(self, record_id: str, short: str, error: str, *, failures: int) -> None:
        """Count an ID set aside; `failures` is how many runs in a row it failed, this one too."""
        self.reasons[record_id] = short
        if not self.first_failure:
            self.first_failure = error
        if failures == 1:
            self._fresh_answered += 1
            self._fresh_failed += 1
            self._recent.append(True)

    def systemic(self, *, final: bool) -> str | None:
        """Why the run must stop, or None: most fresh IDs failed (recently, or by the end)."""
        if final:
            failed, answered = self._fresh_failed, self._fresh_answered
            if not failed or failed * 2 <= answered:
                return None
        else:
            failed, answered = sum(self._recent), len(self._recent)
            if failed < MIN_FAILURES or failed * 2 <= answered:
                return None
        of = "of" if final else "of the last"
        return (
            f"Stream '{self.stream}': {failed} {of} {answered} IDs answered failed, so the "
            "fault is not one ID but the API, the network or api_url; STATE covers all work "
            f"done, and the next run tries the failed IDs again. First failure: "
            f"{self.first_failure}"
        )

    def summary(self) -> str | None:
        """The line listing what was set aside, or None when nothing was."""
        if not self.reasons:
            return None
        listed = list(self.reasons.items())[:MAX_LISTED]
        more = len(self.reasons) - len(listed)
        count = len(self.reasons)
        return (
            f"{self.stream}: set aside {count} failing ID{'' if count == 1 else 's'}, retried on "
            "later runs (docs/tap.md: 'Set aside, never block'): "
            + ", ".join(f"{record_id!r} ({why})" for record_id, why in listed)
            + (f" and {more} more" if more else "")
        )
