"""Clients learned from messages: read from the raw answer, refreshed and retried when due."""

from __future__ import annotations

from tap_chatra.id_map import read_ids
from tap_chatra.tap import TapChatra


def _catalog(config, *, deselect_property=None, selected_streams=None) -> dict:
    catalog = TapChatra(config=config).catalog_dict
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == [] and selected_streams is not None:
                item["metadata"]["selected"] = entry["tap_stream_id"] in selected_streams
            stream, prop = deselect_property or (None, None)
            if entry["tap_stream_id"] == stream and item["breadcrumb"] == ["properties", prop]:
                item["metadata"]["selected"] = False
    return catalog


def test_deselected_client_id_still_brings_the_clients_of_messages(chatra_sandbox, kit) -> None:
    messages = chatra_sandbox.ids("messages")[:8]
    config = kit.config(chatra_sandbox, message_ids=messages)
    catalog = _catalog(config, deselect_property=("messages", "clientId"))
    output = kit.run(config, catalog=catalog)

    records = output.records("messages")
    assert [r["id"] for r in records] == messages
    assert all("clientId" not in r for r in records)
    expected = {chatra_sandbox.store.messages[m]["clientId"] for m in messages}
    assert set(output.ids("clients")) == expected


def test_clients_of_messages_wait_in_state_while_the_clients_stream_is_deselected(
    chatra_sandbox, kit
) -> None:
    messages = chatra_sandbox.ids("messages")[:8]
    config = kit.config(chatra_sandbox, message_ids=messages)
    first = kit.run(config, catalog=_catalog(config, selected_streams={"messages"}))
    assert first.records("clients") == []
    assert kit.gets(chatra_sandbox, "clients") == []

    second = kit.run(
        config, state=first.last_state, catalog=_catalog(config, selected_streams={"clients"})
    )
    expected = {chatra_sandbox.store.messages[m]["clientId"] for m in messages}
    assert set(second.ids("clients")) == expected


def test_clients_of_messages_are_refreshed_and_their_404s_retried(chatra_sandbox, kit) -> None:
    store = chatra_sandbox.store
    messages = chatra_sandbox.ids("messages")[:6]
    # One message belongs to a client Chatra does not know (yet).
    store.messages[messages[0]] = {**store.messages[messages[0]], "clientId": "LateClient0001"}
    config = kit.config(
        chatra_sandbox, message_ids=messages, missing_retry_hours=0, client_refresh_hours=0
    )
    first = kit.run(config)
    assert "LateClient0001" in read_ids(first.last_state["bookmarks"]["clients"]["missing"])
    known = sorted(set(first.ids("clients")))
    changed = known[0]
    store.update_client(changed, name="Renamed Since")
    store.add_client("LateClient0001", name="Arrived Later")

    chatra_sandbox.reset_log()
    second = kit.run(config, state=first.last_state)

    assert kit.gets(chatra_sandbox, "messages") == []
    assert sorted(kit.gets(chatra_sandbox, "clients")) == sorted([*known, "LateClient0001"])
    assert sorted(second.ids("clients")) == sorted([changed, "LateClient0001"])
    clients = second.last_state["bookmarks"]["clients"]
    assert "LateClient0001" in read_ids(clients["fetched"])


def test_a_new_visit_alone_does_not_re_emit_a_client(chatra_sandbox, kit) -> None:
    client_ids = chatra_sandbox.ids("clients")[:3]
    config = kit.config(chatra_sandbox, client_ids=client_ids, client_refresh_hours=0)
    first = kit.run(config)
    assert first.ids("clients") == client_ids

    store = chatra_sandbox.store
    store.update_client(client_ids[0], lastVisitAt=1_900_000_000_000, lastVisitPages=[])
    store.update_client(client_ids[1], lastVisitAt=1_900_000_000_000, name="Renamed")
    second = kit.run(config, state=first.last_state)
    assert second.ids("clients") == [client_ids[1]]
    assert second.records("clients")[0]["lastVisitAt"] == 1_900_000_000_000

    # With nothing ignored, the visit alone is a change.
    store.update_client(client_ids[0], lastVisitAt=1_900_000_000_001)
    third = kit.run({**config, "client_fingerprint_ignore": []}, state=second.last_state)
    assert client_ids[0] in third.ids("clients")
