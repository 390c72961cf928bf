"""Answers no ID should stop a sync for: bodies that are not JSON objects, redirects, slow
bodies, answers for another ID, client IDs that cannot be a path. Each is set aside or
skipped with one warning, and the run goes on with every other ID."""

from __future__ import annotations

import json
import time

from tap_chatra.id_map import read_ids

GOOD = [f"Good{n:013d}" for n in range(8)]

#: The body each bad message ID answers with HTTP 200 (or the status given), and the short
#: reason recorded in state.
BAD_BODIES = {
    "HtmlPage00000001": (200, b"<html><body>Log in to the Wi-Fi</body></html>", "not JSON"),
    "JsonArray0000001": (200, b'[{"id": "JsonArray0000001"}]', "is a JSON array"),
    "EmptyBody0000001": (200, b"", "is empty"),
    "NoContent0000001": (204, b"", "is empty"),
    "HoldsNaN00000001": (200, b'{"id": "HoldsNaN00000001", "n": NaN}', "holds NaN"),
    "NotUtf8000000001": (200, b'{"id": "NotUtf8000000001", "text": "caf\xe9"}', "not UTF-8"),
    "DeepJson00000001": (200, b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "nested deeper"),
}


def _message(record_id: str, **fields) -> bytes:
    return json.dumps({"id": record_id, "type": "client", "text": "hi", **fields}).encode()


def test_bodies_that_are_not_json_objects_are_set_aside_and_the_run_goes_on(
    raw_api, answer_type, kit, caplog
) -> None:
    ids = []
    for good, bad in zip(GOOD, [*BAD_BODIES, None], strict=True):
        raw_api.record(f"/api/messages/{good}", _message(good))
        ids.append(good)
        if bad:
            status, body, _ = BAD_BODIES[bad]
            raw_api.answer(f"/api/messages/{bad}", answer_type(status, body))
            ids.append(bad)
    result = kit.cli(config=raw_api.config(message_ids=ids, fetch_message_clients=False))

    assert result.returncode == 0, kit.last_line(result.stderr)
    assert "Traceback" not in result.stderr
    assert "Wi-Fi" not in result.stderr
    assert "\ufffd" not in result.stdout
    output = kit.parse(result.stdout)
    assert output.ids("messages") == GOOD
    failing = read_ids(output.last_state["bookmarks"]["messages"]["failing"])
    assert sorted(failing) == sorted(BAD_BODIES)
    for record_id, (status, _, reason) in BAD_BODIES.items():
        count_and_reason = failing[record_id][1] or ""
        assert count_and_reason.startswith(f"1:HTTP {status} body "), count_and_reason
        assert reason in count_and_reason, count_and_reason
    assert f"messages: set aside {len(BAD_BODIES)} failing IDs" in result.stderr


def test_an_answer_for_another_id_is_emitted_as_the_id_asked_for(raw_api, kit, caplog) -> None:
    raw_api.record("/api/messages/Asked00000000001", _message("Other00000000001"))
    output = kit.run(raw_api.config(message_ids=["Asked00000000001"], fetch_message_clients=False))

    [record] = output.records("messages")
    assert record["id"] == "Asked00000000001"
    assert record["extra"]["id"] == "Other00000000001"
    assert read_ids(output.last_state["bookmarks"]["messages"]["fetched"]).keys() == {
        "Asked00000000001"
    }
    assert (
        "messages: asked for ID 'Asked00000000001', Chatra answered with ID 'Other00000000001'; "
        "emitted as 'Asked00000000001', with the answer's ID in the 'extra' column."
    ) in caplog.messages
    assert "1 answered for another ID" in caplog.text


def test_redirect_loops_and_unusable_redirects_are_set_aside(raw_api, answer_type, kit) -> None:
    locations = {
        "Loop000000000001": "/api/messages/Loop000000000001",
        "FtpRedirect00001": "ftp://example.com/messages/1",
        "BadIpv6Redirect1": "http://[::1",
    }
    ids = []
    for (record_id, location), good in zip(locations.items(), GOOD, strict=False):
        headers = {"Location": location, "Content-Type": "text/plain"}
        raw_api.answer(f"/api/messages/{record_id}", answer_type(302, b"", headers))
        raw_api.record(f"/api/messages/{good}", _message(good))
        ids += [record_id, good]
    result = kit.cli(config=raw_api.config(message_ids=ids, fetch_message_clients=False))

    assert result.returncode == 0, kit.last_line(result.stderr)
    assert "Traceback" not in result.stderr
    output = kit.parse(result.stdout)
    assert output.ids("messages") == GOOD[:3]
    failing = read_ids(output.last_state["bookmarks"]["messages"]["failing"])
    assert failing["Loop000000000001"][1] == "1:redirect loop"
    assert failing["FtpRedirect00001"][1] == "1:unusable redirect"
    assert failing["BadIpv6Redirect1"][1] == "1:unusable redirect"
    assert "was redirected in a loop; check api_url" in result.stderr
    # A loop stops after a few hops, not requests' default 30.
    assert raw_api.requests.count("/api/messages/Loop000000000001") <= 6


def test_a_trickling_body_is_cut_at_request_timeout(raw_api, answer_type, kit) -> None:
    raw_api.answer(
        "/api/messages/Trickle000000001",
        answer_type(200, _message("Trickle000000001"), trickle=0.5),
    )
    raw_api.record(f"/api/messages/{GOOD[0]}", _message(GOOD[0]))
    config = raw_api.config(
        message_ids=["Trickle000000001", GOOD[0]], request_timeout=1, fetch_message_clients=False
    )
    started = time.monotonic()
    output = kit.run(config)
    elapsed = time.monotonic() - started

    assert output.ids("messages") == [GOOD[0]]
    failing = read_ids(output.last_state["bookmarks"]["messages"]["failing"])
    assert failing["Trickle000000001"][1] == "1:no answer"
    assert elapsed < 10, elapsed  # the body alone would take 40 s


def test_a_message_client_id_that_cannot_be_a_path_is_reported_and_skipped(
    raw_api, kit, caplog
) -> None:
    clients = {"Msg1": "c\\udc00x", "Msg2": ["a", "list"], "Msg3": "", "Msg4": "Client0000001"}
    for message_id, client_id in clients.items():
        body = json.dumps({"id": message_id, "clientId": client_id}).replace("\\\\", "\\")
        raw_api.record(f"/api/messages/{message_id}", body.encode())
    raw_api.record("/api/clients/Client0000001", b'{"id": "Client0000001"}')
    output = kit.run(raw_api.config(message_ids=list(clients)))

    assert output.ids("messages") == list(clients)
    assert output.ids("clients") == ["Client0000001"]
    warnings = [m for m in caplog.messages if "has a clientId that cannot be fetched" in m]
    assert len(warnings) == 3
    assert any("lone surrogate" in w for w in warnings)
    assert output.error is None
