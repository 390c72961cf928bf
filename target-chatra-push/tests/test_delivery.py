"""Delivery against the sandbox over real HTTP: each message POSTed once, whatever happens."""

from __future__ import annotations

import collections
import random

import pytest

from target_chatra_push.ledger import FailureKind, Status

ORDER_TEXTS = [
    "Hi Ada, order 100 has shipped.",
    "Hi Bob, order 101 has shipped.",
    "Hi Cy, order 102 has shipped.",
    "Hi Dee, order 103 has shipped.",
    "Hi Eve, order 104 has shipped.",
]


def test_same_input_twice_posts_each_message_once(sandbox, kit, sent_texts):
    config = kit.config(sandbox)
    first = kit.run(config, "orders.singer")
    second = kit.run(config, "orders.singer")

    assert sent_texts(sandbox) == ORDER_TEXTS
    assert [r["method"] for r in sandbox.request_log()] == ["POST"] * 5
    assert first.count("sent") == 5
    assert second.count("sent") == 0
    assert second.count("duplicate") == 5
    ledger = kit.ledger()
    assert {entry.status for entry in ledger.values()} == {Status.SENT}
    assert sorted(e.message_id for e in ledger.values()) == sorted(s["id"] for s in sandbox.sends())


def test_body_of_a_pushed_message(sandbox, kit):
    kit.run(kit.config(sandbox), "orders.singer")

    first = sandbox.sends()[0]
    assert first["resource"] == "pushedMessages"
    assert first["body"] == {
        "clientId": "client-ada",
        "text": "Hi Ada, order 100 has shipped.",
        "receivedFrom": "target-chatra-push",
    }


def test_duplicates_within_one_input_are_sent_once(sandbox, kit, sent_texts):
    run = kit.run(kit.config(sandbox), "orders_with_duplicates.singer")

    assert sent_texts(sandbox) == ORDER_TEXTS[:3]
    assert run.count("sent") == 3
    assert run.count("duplicate") == 3


def test_sent_ids_file_lists_what_was_sent_for_the_tap(sandbox, kit):
    config = kit.config(sandbox)
    kit.run(config, "orders.singer")
    kit.run(config, "orders.singer")

    assert kit.sent_ids() == [send["id"] for send in sandbox.sends()]


def test_report_file_holds_the_summary(sandbox, kit):
    config = kit.config(sandbox)
    kit.run(config, "orders.singer")
    kit.run(config, "orders_with_duplicates.singer")

    report = kit.report()
    assert report["dry_run"] is False
    assert report["stopped"] is None
    assert report["streams"]["orders"]["duplicate"] == 6
    assert report["streams"]["orders"]["sent"] == 0
    assert report["totals"]["duplicate"] == 6


def test_summary_is_logged_per_stream(sandbox, kit, caplog):
    kit.run(kit.config(sandbox), "orders_with_duplicates.singer")

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Summary:")]
    assert lines == [
        (
            "Summary: stream orders: sent 3, duplicate 3, unconfirmed 0, invalid 0, rejected 0, "
            "previewed 0, deferred 0, not_retried 0"
        )
    ]


def test_invalid_and_rejected_rows_go_to_the_dead_letter_file(sandbox, kit, sent_texts):
    run = kit.run(kit.config(sandbox), "orders_bad_rows.singer")

    assert sent_texts(sandbox) == ["Your parcel is on its way.", "Bob's parcel is on its way."]
    assert run.count("invalid") == 4
    assert run.count("rejected") == 1
    letters = {letter["key"]: letter for letter in kit.dead_letters()}
    assert sorted(letters) == ["[201]", "[202]", "[203]", "[204]", "[205]"]
    assert {key: letter["kind"] for key, letter in letters.items()} == {
        "[201]": "invalid",
        "[202]": "invalid",
        "[203]": "invalid",
        "[204]": "invalid",
        "[205]": "rejected",
    }
    assert letters["[201]"]["reason"] == "no client ID: 'client_id' is missing or empty"
    assert letters["[202]"]["reason"] == "empty text: the message text is blank"
    assert letters["[203]"]["reason"].startswith("text too long: 5001 characters")
    assert letters["[204]"]["reason"] == "wrong type: 'amount' fails the stream schema (type)"
    assert letters["[204]"]["record"]["amount"] == "twelve"
    rejected = letters["[205]"]
    assert rejected["status"] == 404
    assert "Client not found" in rejected["reason"]
    assert rejected["request"]["path"] == "/pushedMessages/"
    assert rejected["request"]["body"]["clientId"] == "client-nobody"
    ledger = kit.ledger()
    assert ledger["[205]"].status is Status.FAILED
    assert ledger["[205]"].failure_kind is FailureKind.REJECTED
    assert "[201]" not in ledger  # invalid rows never reach the ledger: nothing was attempted


def test_dead_letter_file_is_private(sandbox, kit):
    kit.run(kit.config(sandbox), "orders_bad_rows.singer")

    assert kit.dead_letter_path.stat().st_mode & 0o777 == 0o600


def test_schema_validation_can_be_turned_off(sandbox, kit, sent_texts):
    kit.run(kit.config(sandbox, validate_records=False), "orders_bad_rows.singer")

    assert "Hello" in sent_texts(sandbox)  # row 204, whose amount breaks the schema
    assert "[204]" not in {letter["key"] for letter in kit.dead_letters()}


def test_rejected_rows_are_retried_on_a_later_run(sandbox, kit, sent_texts):
    config = kit.config(sandbox)
    kit.run(config, "orders_bad_rows.singer")
    sandbox.store.add_client("client-nobody")
    second = kit.run(config, "orders_bad_rows.singer")

    assert second.count("sent") == 1
    assert sent_texts(sandbox)[-1] == "Nobody will get this."
    entry = kit.ledger()["[205]"]
    assert entry.status is Status.SENT
    assert entry.attempts == 2
    assert len(kit.dead_letters()) == 5 + 4  # the invalid rows are dead-lettered each run


def test_rejected_rows_are_not_retried_without_retry_failed(sandbox, kit):
    config = kit.config(sandbox, retry_failed=False)
    kit.run(config, "orders_bad_rows.singer")
    sandbox.store.add_client("client-nobody")
    second = kit.run(config, "orders_bad_rows.singer")

    assert second.count("not_retried") == 1
    assert len(sandbox.sends()) == 2
    assert [r["method"] for r in sandbox.request_log()].count("POST") == 3


def test_on_error_fail_stops_at_the_first_bad_row(sandbox, kit, sent_texts):
    run = kit.run(kit.config(sandbox, on_error="fail"), "orders_bad_rows.singer", stops=True)

    assert sent_texts(sandbox) == ["Your parcel is on its way."]
    assert "on_error is fail" in run.stopped
    assert "key [201]" in run.stopped
    assert [letter["key"] for letter in kit.dead_letters()] == ["[201]"]
    assert kit.report()["stopped"] == run.stopped


def test_max_sends_per_run_defers_the_rest_to_the_next_run(sandbox, kit, sent_texts):
    config = kit.config(sandbox, max_sends_per_run=2)
    first = kit.run(config, "orders.singer")

    assert sent_texts(sandbox) == ORDER_TEXTS[:2]
    assert first.count("deferred") == 3
    assert len(kit.ledger()) == 2  # deferred rows are not recorded at all

    second = kit.run(config, "orders.singer")
    third = kit.run(config, "orders.singer")
    kit.run(config, "orders.singer")

    assert (second.count("sent"), second.count("duplicate"), second.count("deferred")) == (2, 2, 1)
    assert third.count("sent") == 1
    assert sent_texts(sandbox) == ORDER_TEXTS


def test_changed_message_is_a_duplicate_unless_resend_changed(sandbox, kit, sent_texts):
    kit.run(kit.config(sandbox, text_template="Order {{ order_id }} shipped."), "orders.singer")
    changed = "Order {{ order_id }} is on its way, {{ first_name }}."
    unchanged_run = kit.run(kit.config(sandbox, text_template=changed), "orders.singer")

    assert unchanged_run.count("duplicate") == 5
    assert len(sandbox.sends()) == 5

    resend_run = kit.run(
        kit.config(sandbox, text_template=changed, resend_changed=True), "orders.singer"
    )
    again = kit.run(
        kit.config(sandbox, text_template=changed, resend_changed=True), "orders.singer"
    )

    assert resend_run.count("sent") == 5
    assert again.count("duplicate") == 5
    assert sent_texts(sandbox)[5:] == [
        "Order 100 is on its way, Ada.",
        "Order 101 is on its way, Bob.",
        "Order 102 is on its way, Cy.",
        "Order 103 is on its way, Dee.",
        "Order 104 is on its way, Eve.",
    ]


def test_renaming_received_from_is_no_change(sandbox, kit):
    kit.run(kit.config(sandbox), "orders.singer")
    run = kit.run(kit.config(sandbox, received_from="crm", resend_changed=True), "orders.singer")

    assert run.count("duplicate") == 5
    assert len(sandbox.sends()) == 5


def test_without_key_properties_the_key_is_client_and_text(sandbox, kit, sent_texts):
    singer = kit.resource("orders_with_duplicates.singer").replace(
        '"key_properties": ["order_id"]', '"key_properties": []'
    )
    run = kit.run(kit.config(sandbox), singer)

    assert sent_texts(sandbox) == ORDER_TEXTS[:3]
    assert all(key.startswith("sha256:") for key in kit.ledger())
    assert run.count("duplicate") == 3


def test_dedupe_key_properties_override_the_stream_key(sandbox, kit, sent_texts):
    # One message per client, however many orders: client_id is the dedupe key.
    singer = kit.resource("orders.singer").replace("client-bob", "client-ada")
    kit.run(kit.config(sandbox, dedupe_key_properties=["client_id"]), singer)

    assert sent_texts(sandbox) == [ORDER_TEXTS[0], *ORDER_TEXTS[2:]]
    assert sorted(kit.ledger()) == [
        '["client-ada"]',
        '["client-cy"]',
        '["client-dee"]',
        '["client-eve"]',
    ]


def test_dry_run_sends_nothing_and_leaves_no_trace(sandbox, kit, sent_texts):
    config = kit.config(sandbox, dry_run=True)
    run = kit.run(config, "orders_bad_rows.singer")

    assert sandbox.request_log() == []
    assert run.states == []
    assert not kit.ledger_path.exists()
    assert not kit.dead_letter_path.exists()
    assert not kit.sent_ids_path.exists()
    assert run.count("previewed") == 3  # 205 would be sent too; only Chatra knows the client
    assert run.count("invalid") == 4
    preview = kit.preview()
    assert [row["action"] for row in preview] == [
        "send", "invalid", "invalid", "invalid", "invalid", "send", "send",
    ]  # fmt: skip
    assert preview[0]["request"] == {
        "method": "POST",
        "path": "/pushedMessages/",
        "body": {
            "clientId": "client-ada",
            "text": "Your parcel is on its way.",
            "receivedFrom": "target-chatra-push",
        },
    }
    assert preview[1]["reason"] == "no client ID: 'client_id' is missing or empty"

    real = kit.run(kit.config(sandbox), "orders_bad_rows.singer")

    assert real.count("sent") == 2
    assert real.count("rejected") == 1
    assert len(sent_texts(sandbox)) == 2


def test_dry_run_checks_the_ledger_and_the_cap(sandbox, kit):
    kit.run(kit.config(sandbox, max_sends_per_run=2), "orders.singer")
    run = kit.run(kit.config(sandbox, dry_run=True, max_sends_per_run=2), "orders.singer")

    assert [row["action"] for row in kit.preview()] == [
        "duplicate", "duplicate", "send", "send", "deferred",
    ]  # fmt: skip
    assert (run.count("duplicate"), run.count("previewed"), run.count("deferred")) == (2, 2, 1)
    assert len(sandbox.sends()) == 2


def test_dry_run_needs_no_keys(kit):
    run = kit.run(kit.config(None, dry_run=True), "orders.singer")

    assert run.count("previewed") == 5


def test_agent_mode_posts_to_messages_with_email_and_name(sandbox, kit):
    config = kit.config(
        sandbox, mode="agent_message", agent_email="ops@example.com", agent_name="Ops"
    )
    kit.run(config, "orders.singer")

    assert {send["resource"] for send in sandbox.sends()} == {"messages"}
    assert {r["path"] for r in sandbox.request_log()} == {"/api/messages/"}
    assert sandbox.sends()[0]["body"] == {
        "clientId": "client-ada",
        "text": "Hi Ada, order 100 has shipped.",
        "agentEmail": "ops@example.com",
        "agentName": "Ops",
        "receivedFrom": "target-chatra-push",
    }


def test_agent_mode_with_agent_id(sandbox, kit):
    kit.run(kit.config(sandbox, mode="agent_message", agent_id="agent-7"), "orders.singer")

    bodies = [send["body"] for send in sandbox.sends()]
    assert {send["resource"] for send in sandbox.sends()} == {"messages"}
    assert {body["agentId"] for body in bodies} == {"agent-7"}
    assert all("agentEmail" not in body for body in bodies)


def test_pushed_message_from_a_group(sandbox, kit):
    kit.run(kit.config(sandbox, group_id="group-sales"), "orders.singer")

    assert {send["body"]["groupId"] for send in sandbox.sends()} == {"group-sales"}


VIP_SETTINGS = {
    "vip_notes": {
        "mode": "agent_message",
        "client_id_property": "chatra_client",
        "text_property": "body",
        "agent_id_property": "agent",
        "agent_email": "vip@example.com",
        "agent_name": "VIP desk",
    }
}


def test_summary_has_one_line_per_stream_and_the_report_every_count(sandbox, kit, caplog):
    kit.run(kit.config(sandbox, stream_settings=VIP_SETTINGS), "two_streams.singer")

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Summary:")]
    outcomes = "unconfirmed 0, invalid 0, rejected 0, previewed 0, deferred 0, not_retried 0"
    assert lines == [
        f"Summary: stream orders: sent 2, duplicate 0, {outcomes}",
        f"Summary: stream vip_notes: sent 2, duplicate 0, {outcomes}",
    ]
    streams = kit.report()["streams"]
    counts = {"sent": 2, "duplicate": 0, "unconfirmed": 0, "invalid": 0, "rejected": 0,
              "previewed": 0, "deferred": 0, "not_retried": 0}  # fmt: skip
    for name in ("orders", "vip_notes"):
        assert {key: streams[name][key] for key in counts} == counts


def test_stream_settings_map_each_stream_its_own_way(sandbox, kit):
    run = kit.run(kit.config(sandbox, stream_settings=VIP_SETTINGS), "two_streams.singer")

    by_resource = collections.defaultdict(list)
    for send in sandbox.sends():
        by_resource[send["resource"]].append(send["body"])
    assert [b["clientId"] for b in by_resource["pushedMessages"]] == ["client-ada", "client-bob"]
    assert by_resource["messages"] == [
        {
            "clientId": "client-cy",
            "text": "Thanks for being a VIP!",
            "agentEmail": "vip@example.com",
            "agentName": "VIP desk",
            "receivedFrom": "target-chatra-push",
        },
        {
            "clientId": "client-dee",
            "text": "Your VIP gift ships today.",
            "agentEmail": "vip@example.com",
            "agentName": "VIP desk",
            "receivedFrom": "target-chatra-push",
        },
    ]
    assert (run.count("sent", "orders"), run.count("sent", "vip_notes")) == (2, 2)
    assert sorted(kit.report()["streams"]) == ["orders", "vip_notes"]


def test_lost_answer_is_unconfirmed_and_never_resent(sandbox_with, kit):
    sandbox = sandbox_with(post_reset_after_commit_rate=1.0)
    config = kit.config(sandbox, max_retries=0, max_unconfirmed_in_a_row=0)
    first = kit.run(config, "orders.singer")

    assert first.count("unconfirmed") == 5
    assert len(sandbox.sends()) == 5  # Chatra did create them
    assert {e.status for e in kit.ledger().values()} == {Status.UNKNOWN}

    sandbox.configure(post_reset_after_commit_rate=0.0)
    second = kit.run(config, "orders.singer")

    assert second.count("unconfirmed") == 5
    assert len(sandbox.sends()) == 5
    assert kit.report()["streams"]["orders"]["unconfirmed_keys"] == [
        "[100]", "[101]", "[102]", "[103]", "[104]",
    ]  # fmt: skip


@pytest.mark.parametrize("html", [False, True])
def test_a_5xx_after_chatra_stored_the_post_is_never_retried(sandbox_with, kit, html):
    # A gateway answering 502/504 after its upstream committed the POST.
    sandbox = sandbox_with(post_error_after_commit_rate=1.0, html_error_share=float(html))
    config = kit.config(sandbox, max_retries=3, max_unconfirmed_in_a_row=0)
    first = kit.run(config, "orders.singer")

    posts = [r for r in sandbox.request_log() if r["method"] == "POST"]
    assert [r["fault"] for r in posts] == ["post_error_after_commit"] * 5  # one POST per row
    assert len(sandbox.sends()) == 5
    assert first.count("unconfirmed") == 5
    assert first.count("sent") == 0
    assert {e.status for e in kit.ledger().values()} == {Status.UNKNOWN}

    sandbox.configure(post_error_after_commit_rate=0.0)
    second = kit.run(config, "orders.singer")

    assert second.count("unconfirmed") == 5
    assert len(sandbox.sends()) == 5  # nothing went out again on the next run


def test_5xx_answers_after_commit_count_toward_the_stop(sandbox_with, kit):
    sandbox = sandbox_with(post_error_after_commit_rate=1.0)
    run = kit.run(kit.config(sandbox, max_unconfirmed_in_a_row=2), "orders.singer", stops=True)

    assert "answers to the last 2 POSTs were lost" in run.stopped
    assert len(sandbox.sends()) == 2


def test_resend_unconfirmed_sends_them_again(sandbox_with, kit):
    sandbox = sandbox_with(post_reset_after_commit_rate=1.0)
    kit.run(kit.config(sandbox, max_unconfirmed_in_a_row=0), "orders.singer")
    sandbox.configure(post_reset_after_commit_rate=0.0)
    run = kit.run(kit.config(sandbox, resend_unconfirmed=True), "orders.singer")

    assert run.count("sent") == 5
    assert len(sandbox.sends()) == 10
    assert {e.status for e in kit.ledger().values()} == {Status.SENT}


def test_answers_lost_in_a_row_stop_the_run_and_the_rest_go_out_later(sandbox_with, kit):
    sandbox = sandbox_with(post_reset_after_commit_rate=1.0)
    config = kit.config(sandbox, max_unconfirmed_in_a_row=2)
    run = kit.run(config, "orders_with_states.singer", stops=True)

    assert "answers to the last 2 POSTs were lost" in run.stopped
    assert "stream orders, key [101]" in run.stopped
    assert len(sandbox.sends()) == 2  # Chatra created both; nothing after them was tried
    assert run.states == []  # the stop came before the STATE that follows row 101

    sandbox.configure(post_reset_after_commit_rate=0.0)
    later = kit.run(kit.config(sandbox), "orders_with_states.singer")

    assert (later.count("unconfirmed"), later.count("sent")) == (2, 3)
    assert len(sandbox.sends()) == 5


def _seed_losing_every_other_answer(rows: int) -> int:
    """A fault seed with which the sandbox drops the answers to POSTs 1, 3, 5, ... at a 50%
    rate (its only draw per POST when no other fault is on)."""
    wanted = [n % 2 == 0 for n in range(rows)]
    for seed in range(10_000):
        draws = random.Random(seed)
        if [draws.random() < 0.5 for _ in range(rows)] == wanted:
            return seed
    raise AssertionError("no such seed")


def test_a_confirmed_answer_resets_the_count_of_lost_ones(sandbox_with, kit):
    # Lost, sent, lost, sent, lost: never two lost in a row, so the run goes to the end.
    seed = _seed_losing_every_other_answer(5)
    sandbox = sandbox_with(post_reset_after_commit_rate=0.5, fault_seed=seed)
    run = kit.run(kit.config(sandbox, max_unconfirmed_in_a_row=2), "orders.singer")

    assert [send["response_dropped"] for send in sandbox.sends()] == [True, False] * 2 + [True]
    assert (run.count("unconfirmed"), run.count("sent")) == (3, 2)


def test_chatra_unavailable_stops_the_run_and_the_row_goes_out_later(sandbox_with, kit):
    # Only a 429 surely leaves a POST undone (a 5xx may come after the commit).
    sandbox = sandbox_with(burst_429={"every": 0, "count": 1000}, retry_after=False)
    config = kit.config(sandbox, max_retries=1)
    run = kit.run(config, "orders.singer", stops=True)

    assert "Chatra kept refusing stream orders key [100]" in run.stopped
    assert sandbox.sends() == []
    assert len(sandbox.request_log()) == 2  # one row, tried twice, then nothing more
    entry = kit.ledger()["[100]"]
    assert (entry.status, entry.failure_kind) == (Status.FAILED, FailureKind.NOT_SENT)

    sandbox.configure(burst_429=None)
    later = kit.run(kit.config(sandbox, retry_failed=False), "orders.singer")

    assert later.count("sent") == 5  # not_sent rows go out even with retry_failed off
    assert len(sandbox.sends()) == 5


def test_bad_keys_stop_the_run_at_once(sandbox, kit):
    config = kit.config(sandbox, api_key_pair=f"{sandbox.public_key}:wrong")
    run = kit.run(config, "orders.singer", stops=True)

    assert len(sandbox.request_log()) == 1
    assert sandbox.sends() == []
    assert "HTTP 401" in run.stopped
    assert "API keys" in run.stopped
    assert run.states == []
    assert kit.report()["totals"]["deferred"] == 1

    later = kit.run(kit.config(sandbox), "orders.singer")
    assert later.count("sent") == 5


def test_meltano_config_test_checks_keys_and_sends_nothing(sandbox, kit, caplog):
    run = kit.run(kit.config(sandbox), "meltano_config_test.singer")

    assert sandbox.sends() == []
    assert [r["method"] for r in sandbox.request_log()] == ["GET"]
    assert not kit.ledger_path.exists()
    assert "Chatra accepted the API keys" in caplog.text
    assert run.states == [{"bookmarks": {"meltano_test_stream": {"last_record": 1}}}]


def test_meltano_config_test_with_bad_keys_fails(sandbox, kit):
    config = kit.config(sandbox, api_key_pair=f"{sandbox.public_key}:wrong")
    run = kit.run(config, "meltano_config_test.singer", stops=True)

    assert "HTTP 401" in run.stopped
    assert sandbox.sends() == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mode": "agent_message"}, "mode agent_message needs a sender"),
        ({"agent_email": "a@example.com", "agent_name": "A"}, "apply to mode agent_message only"),
        ({"agent_id": "a", "group_id": "g"}, "not both"),
        (
            {"mode": "agent_message", "agent_email": "a@example.com"},
            "agent_email and agent_name go together",
        ),
        ({"stream_settings": {"vip": {"mode": "agent_message"}}}, "stream_settings.vip: mode"),
        ({"api_key_pair": "no-colon"}, "api_key_pair is malformed"),
    ],
)
def test_contradicting_settings_stop_before_anything_is_read(sandbox, kit, overrides, message):
    from singer_sdk.exceptions import ConfigValidationError  # noqa: PLC0415

    with pytest.raises(ConfigValidationError) as raised:
        kit.run(kit.config(sandbox, **overrides), "orders.singer")

    assert any(message in error for error in raised.value.errors), raised.value.errors
    assert sandbox.request_log() == []


def test_dry_run_counts_duplicates_within_one_input(kit):
    run = kit.run(kit.config(None, dry_run=True), "orders_with_duplicates.singer")

    assert (run.count("previewed"), run.count("duplicate")) == (3, 3)
    assert [row["action"] for row in kit.preview()] == [
        "send", "send", "duplicate", "send", "duplicate", "duplicate",
    ]  # fmt: skip


def test_a_rejected_row_repeated_in_one_input_is_tried_once(sandbox, kit):
    lines = kit.resource("orders_bad_rows.singer").splitlines(keepends=True)
    rejected_row = lines[6]
    assert "client-nobody" in rejected_row
    run = kit.run(kit.config(sandbox), "".join([*lines, rejected_row]))

    assert len([r for r in sandbox.request_log() if r["method"] == "POST"]) == 3
    assert (run.count("rejected"), run.count("duplicate")) == (1, 1)


def test_a_403_for_one_client_rejects_that_row_once_the_keys_check_out(
    sandbox_with, kit, sent_texts
):
    # Chatra refuses one client with 403; one GET shows the keys are fine, so the refusal is
    # about the row: it is dead-lettered and the rows after it still go out.
    sandbox = sandbox_with(reject_clients={"client-ada": 403})
    run = kit.run(kit.config(sandbox), "orders.singer")

    log = [(r["method"], r["status"]) for r in sandbox.request_log()]
    assert log == [("POST", 403), ("GET", 404)] + [("POST", 200)] * 4
    assert sent_texts(sandbox) == ORDER_TEXTS[1:]
    assert (run.count("rejected"), run.count("sent")) == (1, 4)
    (letter,) = kit.dead_letters()
    assert (letter["key"], letter["kind"], letter["status"]) == ("[100]", "rejected", 403)
    entry = kit.ledger()["[100]"]
    assert (entry.status, entry.failure_kind) == (Status.FAILED, FailureKind.REJECTED)

    sandbox.configure(reject_clients={})
    later = kit.run(kit.config(sandbox), "orders.singer")

    assert (later.count("sent"), later.count("duplicate")) == (1, 4)
    assert sorted(sent_texts(sandbox)) == sorted(ORDER_TEXTS)


def test_a_403_with_refused_keys_stops_the_run_at_once(sandbox_with, kit):
    # Keys Chatra refuses with 403 rather than 401: the check after the POST's 403 fails too.
    sandbox = sandbox_with(wrong_keys_status=403)
    config = kit.config(sandbox, api_key_pair=f"{sandbox.public_key}:wrong")
    run = kit.run(config, "orders.singer", stops=True)

    assert [(r["method"], r["status"]) for r in sandbox.request_log()] == [
        ("POST", 403),
        ("GET", 403),
    ]
    assert "HTTP 403" in run.stopped
    assert "API keys" in run.stopped
    assert not kit.dead_letter_path.exists()
    entry = kit.ledger()["[100]"]
    assert (entry.status, entry.failure_kind) == (Status.FAILED, FailureKind.NOT_SENT)


@pytest.mark.parametrize("status", [400, 422])
def test_a_row_chatra_rejects_is_dead_lettered_and_retried_later(
    sandbox_with, kit, sent_texts, status
):
    sandbox = sandbox_with(reject_clients={"client-cy": status})
    config = kit.config(sandbox)
    first = kit.run(config, "orders.singer")

    assert sent_texts(sandbox) == [*ORDER_TEXTS[:2], *ORDER_TEXTS[3:]]
    assert (first.count("sent"), first.count("rejected")) == (4, 1)
    assert [r["method"] for r in sandbox.request_log()] == ["POST"] * 5  # no retry of a 4xx
    # The row is to be tried again, so no STATE past it is passed on (issue 11, finding 4).
    assert first.states == []
    (letter,) = kit.dead_letters()
    assert (letter["key"], letter["kind"], letter["status"]) == ("[102]", "rejected", status)
    assert f"HTTP {status}" in letter["reason"]
    assert letter["request"]["body"]["clientId"] == "client-cy"
    entry = kit.ledger()["[102]"]
    assert (entry.status, entry.failure_kind) == (Status.FAILED, FailureKind.REJECTED)

    sandbox.configure(reject_clients={})
    second = kit.run(config, "orders.singer")
    third = kit.run(config, "orders.singer")

    assert (second.count("sent"), second.count("duplicate")) == (1, 4)
    assert third.count("duplicate") == 5
    assert sorted(sent_texts(sandbox)) == sorted(ORDER_TEXTS)  # each exactly once
    entry = kit.ledger()["[102]"]
    assert (entry.status, entry.attempts) == (Status.SENT, 2)


@pytest.mark.parametrize("status", [400, 422])
def test_a_row_chatra_rejects_is_not_retried_without_retry_failed(
    sandbox_with, kit, sent_texts, status
):
    sandbox = sandbox_with(reject_clients={"client-cy": status})
    config = kit.config(sandbox, retry_failed=False)
    kit.run(config, "orders.singer")
    sandbox.configure(reject_clients={})
    second = kit.run(config, "orders.singer")

    assert (second.count("not_retried"), second.count("duplicate")) == (1, 4)
    assert "Hi Cy, order 102 has shipped." not in sent_texts(sandbox)
    assert len(sandbox.sends()) == 4
    assert [r["method"] for r in sandbox.request_log()].count("POST") == 5
    assert kit.ledger()["[102]"].status is Status.FAILED
