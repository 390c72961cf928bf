"""The delivery rules, one ledger state at a time."""

from __future__ import annotations

import pytest

from target_chatra_push.ledger import Entry, FailureKind, Status
from target_chatra_push.policy import Decision, DeliveryOptions, decide


def entry(status: Status, *, kind: FailureKind | None = None, payload_hash: str = "h") -> Entry:
    return Entry("s", "k", status, kind, payload_hash, None, 1, None, "t0", "t1")


SENT = entry(Status.SENT)
SENT_OTHER = entry(Status.SENT, payload_hash="old")
PENDING = entry(Status.PENDING)
UNKNOWN = entry(Status.UNKNOWN)
REJECTED = entry(Status.FAILED, kind=FailureKind.REJECTED)
NOT_SENT = entry(Status.FAILED, kind=FailureKind.NOT_SENT)


@pytest.mark.parametrize(
    ("current", "options", "expected"),
    [
        (None, {}, Decision.SEND),
        (SENT, {}, Decision.DUPLICATE),
        (SENT, {"resend_changed": True}, Decision.DUPLICATE),
        (SENT_OTHER, {}, Decision.DUPLICATE),
        (SENT_OTHER, {"resend_changed": True}, Decision.SEND),
        (PENDING, {}, Decision.UNCONFIRMED),
        (UNKNOWN, {}, Decision.UNCONFIRMED),
        (PENDING, {"resend_unconfirmed": True}, Decision.SEND),
        (UNKNOWN, {"resend_unconfirmed": True}, Decision.SEND),
        (REJECTED, {}, Decision.SEND),
        (REJECTED, {"retry_failed": False}, Decision.NOT_RETRIED),
        (NOT_SENT, {"retry_failed": False}, Decision.SEND),
    ],
)
def test_what_the_ledger_says_to_do(current, options, expected):
    decision, why = decide(current, "h", DeliveryOptions(**options), sends_so_far=0)

    assert decision is expected
    assert why


def test_the_cap_defers_only_what_would_be_sent():
    capped = DeliveryOptions(max_sends_per_run=3)

    assert decide(None, "h", capped, sends_so_far=2)[0] is Decision.SEND
    assert decide(None, "h", capped, sends_so_far=3)[0] is Decision.DEFERRED
    assert decide(SENT, "h", capped, sends_so_far=3)[0] is Decision.DUPLICATE
    assert decide(None, "h", DeliveryOptions(), sends_so_far=10**6)[0] is Decision.SEND
