"""The delivery rules: which settings apply, and what the ledger says to do with a key."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from target_chatra_push.ledger_model import FailureKind, Status
from target_chatra_push.settings import (
    DEFAULT_DEAD_LETTER_PATH,
    DEFAULT_LEDGER_PATH,
    DEFAULT_PREVIEW_PATH,
)

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from target_chatra_push.ledger_model import Entry


@dataclass(frozen=True)
class DeliveryOptions:
    """The run-wide delivery settings."""

    dry_run: bool = False
    stop_on_bad_row: bool = False
    retry_failed: bool = True
    resend_unconfirmed: bool = False
    max_unconfirmed_in_a_row: int = 3
    resend_changed: bool = False
    max_sends_per_run: int = 0
    ledger_path: Path = Path(DEFAULT_LEDGER_PATH)
    ledger_url: str | None = None
    new_ledger_ok: bool = False
    ledger_wait_seconds: float = 30.0
    run_files: tuple[tuple[str, Path], ...] = ()
    """The files a real run writes, each with the setting that names it.

    Earlier sends leave them behind: with them, a missing ledger was lost, not new.
    """
    dead_letter_path: Path = Path(DEFAULT_DEAD_LETTER_PATH)
    preview_path: Path = Path(DEFAULT_PREVIEW_PATH)
    report_path: Path | None = None
    preview_html_path: Path | None = None
    report_html_path: Path | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, t.Any]) -> DeliveryOptions:
        """Read the delivery settings (defaults as in the settings schema)."""
        report = config.get("report_path")
        preview_html, report_html = config.get("preview_html_path"), config.get("report_html_path")
        return cls(
            dry_run=bool(config.get("dry_run", False)),
            stop_on_bad_row=config.get("on_error", "continue") == "fail",
            retry_failed=bool(config.get("retry_failed", True)),
            resend_unconfirmed=bool(config.get("resend_unconfirmed", False)),
            max_unconfirmed_in_a_row=int(config.get("max_unconfirmed_in_a_row", 3) or 0),
            resend_changed=bool(config.get("resend_changed", False)),
            max_sends_per_run=int(config.get("max_sends_per_run") or 0),
            ledger_path=Path(config.get("ledger_path") or DEFAULT_LEDGER_PATH),
            ledger_url=config.get("ledger_url") or None,
            new_ledger_ok=bool(config.get("new_ledger_ok", False)),
            ledger_wait_seconds=float(config.get("ledger_wait_seconds", 30)),
            run_files=_run_files(config),
            dead_letter_path=Path(config.get("dead_letter_path") or DEFAULT_DEAD_LETTER_PATH),
            preview_path=Path(config.get("preview_path") or DEFAULT_PREVIEW_PATH),
            report_path=Path(report) if report else None,
            preview_html_path=Path(preview_html) if preview_html else None,
            report_html_path=Path(report_html) if report_html else None,
        )

    @property
    def trace_paths(self) -> tuple[Path, ...]:
        """The files earlier real runs leave behind."""
        return tuple(dict.fromkeys(path for _, path in self.run_files))

    def files_to_write(self) -> tuple[tuple[str, Path], ...]:
        """The files this run writes (a dry run: the preview and the report), by setting."""
        if not self.dry_run:
            return self.run_files
        report = (("report_path", self.report_path),) if self.report_path else ()
        return (("preview_path", self.preview_path), *report)


def _run_files(config: Mapping[str, t.Any]) -> tuple[tuple[str, Path], ...]:
    """The sent-ID files (top level and per stream), the dead-letter file and the report."""
    named = [("sent_ids_path", config.get("sent_ids_path"))]
    named += [
        (f"stream_settings.{stream}.sent_ids_path", (settings or {}).get("sent_ids_path"))
        for stream, settings in (config.get("stream_settings") or {}).items()
    ]
    named += [
        ("dead_letter_path", config.get("dead_letter_path") or DEFAULT_DEAD_LETTER_PATH),
        ("report_path", config.get("report_path")),
    ]
    return tuple((setting, Path(name)) for setting, name in named if name)


class Decision(StrEnum):
    """What the ledger says to do with a key; also the dry-run preview's `action`."""

    SEND = "send"
    DUPLICATE = "duplicate"
    UNCONFIRMED = "unconfirmed"
    NOT_RETRIED = "not_retried"
    DEFERRED = "deferred"


def decide(
    entry: Entry | None, payload_hash: str, options: DeliveryOptions, sends_so_far: int
) -> tuple[Decision, str]:
    """Decide from a key's ledger entry whether to send it; the second item says why.

    Args:
        entry: The key's ledger entry, None for a key never seen.
        payload_hash: Hash of the message the row renders to now.
        options: The delivery settings.
        sends_so_far: Messages sent (or previewed) in this run, for `max_sends_per_run`.
    """
    if entry is None:
        decision, why = Decision.SEND, "new"
    elif entry.status is Status.SENT:
        changed = entry.payload_hash != payload_hash
        if changed and options.resend_changed:
            decision, why = Decision.SEND, "changed since it was sent; resend_changed is on"
        else:
            decision = Decision.DUPLICATE
            why = "already sent" + (", since changed (resend_changed is off)" if changed else "")
    elif entry.status in {Status.PENDING, Status.UNKNOWN}:
        if options.resend_unconfirmed:
            decision, why = Decision.SEND, "unconfirmed earlier; resend_unconfirmed is on"
        else:
            decision = Decision.UNCONFIRMED
            why = f"an earlier send was never confirmed ({entry.status.value})"
    elif entry.failure_kind is FailureKind.NOT_SENT:
        decision, why = Decision.SEND, "not sent earlier; trying again"
    elif options.retry_failed:
        decision, why = Decision.SEND, "rejected earlier; retry_failed is on"
    else:
        decision, why = Decision.NOT_RETRIED, "rejected earlier; retry_failed is off"
    cap = options.max_sends_per_run
    if decision is Decision.SEND and cap and sends_so_far >= cap:
        decision, why = Decision.DEFERRED, f"max_sends_per_run ({cap}) reached"
    return decision, why
