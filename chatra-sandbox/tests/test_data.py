"""The seeded store: deterministic, realistic, lazy, and its ID files."""

from __future__ import annotations

import re

import pytest

from chatra_sandbox import UNDOCUMENTED_KEY, SandboxStore

METEOR_ID = re.compile(r"^[23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz]{17}$")
CHATRA_CLIENT_ID = re.compile(r"^[a-z0-9]{40}$")


def snapshot(store: SandboxStore) -> dict:
    return {
        stream: {i: store.records(stream)[i] for i in store.ids(stream)}
        for stream in ("messages", "pushed_messages", "clients")
    }


def test_same_seed_gives_same_data_and_other_seed_differs():
    assert snapshot(SandboxStore(seed=5)) == snapshot(SandboxStore(seed=5))
    assert snapshot(SandboxStore(seed=5)) != snapshot(SandboxStore(seed=6))


def test_record_does_not_depend_on_access_order():
    first, second = SandboxStore(seed=3), SandboxStore(seed=3)
    ids = first.ids("messages")
    assert [first.messages[i] for i in ids] == [second.messages[i] for i in reversed(ids)][::-1]


def test_created_ids_follow_the_seed():
    assert SandboxStore(seed=1).new_message_id() == SandboxStore(seed=1).new_message_id()


def test_sizes_and_id_shapes():
    store = SandboxStore(seed=1, clients=30, messages=50, pushed_messages=10)
    assert (len(store.clients), len(store.messages), len(store.pushed_messages)) == (30, 50, 10)
    message_ids = store.ids("messages") + store.ids("pushed_messages")
    assert all(METEOR_ID.match(i) for i in message_ids)
    assert len(set(message_ids)) == 60
    plain = [c for c in store.ids("clients") if c not in store.special_client_ids()]
    assert len(plain) == 30 - 6
    assert all(CHATRA_CLIENT_ID.match(c) for c in plain)


def test_messages_are_realistic():
    store = SandboxStore(seed=11, clients=20, messages=200, pushed_messages=20)
    messages = list(store.messages.values())
    assert {m["type"] for m in messages} == {"agent", "client"}
    for message in messages:
        assert message["clientId"] in store.clients
        assert message["isPushed"] is False
        assert isinstance(message["createdAt"], int)
        assert message["createdAt"] > 1_600_000_000_000
        assert ("agentId" in message) == (message["type"] == "agent")
        if "agentId" in message:
            assert store.agents[message["agentId"]].name == message["agentName"]
    files = [m["file"] for m in messages if "file" in m]
    assert files
    assert any(
        f["isImage"] and {"width", "height", "previewUrl"} <= set(f["imageInfo"]) for f in files
    )
    assert all(m["text"] == m["file"]["filename"] for m in messages if "file" in m)
    pushed = list(store.pushed_messages.values())
    assert all(m["isPushed"] is True and m["type"] == "agent" for m in pushed)


def test_clients_are_realistic():
    store = SandboxStore(seed=2, clients=40, messages=0, pushed_messages=0)
    clients = list(store.clients.values())
    keys = {
        "id",
        "chatId",
        "displayedName",
        "name",
        "email",
        "phone",
        "notes",
        "info",
        "basicInfo",
        "integrationData",
        "location",
        "browser",
        "language",
        "lastVisitAt",
    }
    assert all(keys <= set(c) for c in clients)
    assert any(c["email"] is None for c in clients)
    assert any(c["email"] is not None for c in clients)
    assert any(c["info"] for c in clients)
    assert all(METEOR_ID.match(c["chatId"]) for c in clients)


def test_special_client_ids_are_seeded_when_there_is_room():
    assert SandboxStore(clients=20).special_client_ids() == [
        "tom+news@example.com",
        "crm/contact/1001",
        "visitor 42",
        "клиент-7",
        "order#55?ref=mail",
        "50%off",
    ]
    assert SandboxStore(clients=3).special_client_ids() == ["tom+news@example.com"]


def test_a_few_records_of_each_stream_carry_the_undocumented_key():
    store = SandboxStore(seed=4)
    for stream in ("messages", "pushed_messages", "clients"):
        flagged = store.ids_with_undocumented_key(stream)
        records = store.records(stream)
        assert 0 < len(flagged) < len(records) / 3
        assert all(UNDOCUMENTED_KEY in records[i] for i in flagged)
        assert sum(UNDOCUMENTED_KEY in records[i] for i in records) == len(flagged)
    assert store.undocumented_key == UNDOCUMENTED_KEY


def test_write_id_files(tmp_path):
    store = SandboxStore(seed=9)
    paths = store.write_id_files(tmp_path / "ids")
    assert set(paths) == {"messages", "pushed_messages", "clients"}
    for stream, path in paths.items():
        assert path.name == f"{stream}.txt"
        assert path.read_text(encoding="utf-8").splitlines() == store.ids(stream)
    assert "клиент-7" in paths["clients"].read_text(encoding="utf-8")


def test_server_write_id_files_includes_created_records(
    api, chatra_sandbox, tmp_path, plain_client_id
):
    created = api.post("/pushedMessages/", json={"clientId": plain_client_id, "text": "x"}).json()
    paths = chatra_sandbox.write_id_files(tmp_path)
    assert paths["pushed_messages"].read_text(encoding="utf-8").splitlines()[-1] == created["id"]


def test_mapping_behaves_like_a_dict():
    store = SandboxStore(seed=1, clients=5, messages=5, pushed_messages=0)
    message_id = store.ids("messages")[0]
    assert message_id in store.messages
    assert store.messages.get("missing") is None
    record = store.messages[message_id]
    store.messages["NEW"] = {"id": "NEW"}
    assert list(store.messages)[-1] == "NEW"
    del store.messages[message_id]
    assert message_id not in store.messages
    with pytest.raises(KeyError):
        store.messages[message_id]
    assert len(store.messages) == 5
    assert record["id"] == message_id


def test_update_and_add_client():
    store = SandboxStore(seed=1)
    client_id = store.ids("clients")[0]
    updated = store.update_client(client_id, name="Zed", score=3)
    assert store.clients[client_id] == updated
    assert updated["score"] == 3
    with pytest.raises(KeyError):
        store.update_client("missing", name="x")
    added = store.add_client("my own/id", name="Own")
    assert added["id"] == "my own/id"
    assert added["name"] == "Own"
    assert store.ids("clients")[-1] == "my own/id"
    with pytest.raises(ValueError, match="taken"):
        store.add_client("my own/id")


def test_invalid_sizes():
    with pytest.raises(ValueError, match="negative"):
        SandboxStore(clients=-1)
    with pytest.raises(ValueError, match="client"):
        SandboxStore(clients=0, messages=1)


def test_large_store_builds_records_only_when_asked():
    # Lazy, so a 100,000-ID store starts at once; asserted by what is built, not by a timer.
    store = SandboxStore(seed=1, clients=100_000, messages=100_000, pushed_messages=20_000)
    assert len(store.messages) == 100_000
    assert len(store.clients) == 100_000
    assert not store.messages._records
    assert not store.clients._records
    last = store.ids("messages")[-1]
    assert store.messages[last]["clientId"] in store.clients
    assert list(store.messages._records) == [last]
    assert not store.clients._records
