"""Every API endpoint over real HTTP: bodies, status codes and error bodies."""

from __future__ import annotations

import base64
import time
from urllib.parse import quote

import pytest
import requests

METEOR_CHARS = set("23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz")


def assert_error(response: requests.Response, status: int) -> str:
    assert response.status_code == status
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["message"], str)
    assert body["message"]
    return body["message"]


def test_get_message_returns_the_stored_record(api, chatra_sandbox, agent_message_id):
    response = api.get(f"/messages/{agent_message_id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == chatra_sandbox.store.messages[agent_message_id]
    assert response.json()["isPushed"] is False


def test_get_pushed_message(api, chatra_sandbox):
    message_id = chatra_sandbox.ids("pushed_messages")[0]
    body = api.get(f"/pushedMessages/{message_id}").json()
    assert body["id"] == message_id
    assert body["isPushed"] is True
    assert body["type"] == "agent"


def test_get_client(api, plain_client_id):
    body = api.get(f"/clients/{plain_client_id}").json()
    assert body["id"] == plain_client_id
    for key in ("chatId", "displayedName", "info", "basicInfo", "location", "browser"):
        assert key in body


def test_basic_auth_is_accepted(chatra_sandbox, plain_client_id):
    response = requests.get(
        f"{chatra_sandbox.api_url}/clients/{plain_client_id}",
        auth=(chatra_sandbox.public_key, chatra_sandbox.secret_key),
        timeout=10,
    )
    assert response.status_code == 200
    assert chatra_sandbox.request_log()[-1]["auth_ok"] is True


def _basic(pair: str) -> str:
    return "Basic " + base64.b64encode(pair.encode()).decode()


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Chatra.Simple sandbox-public:wrong-secret",
        "Chatra.Simple sandbox-public",
        "Chatra.Simple other-public:sandbox-secret",
        _basic("sandbox-public:wrong-secret"),
        "Basic not*base64",
        "Bearer sandbox-public:sandbox-secret",
    ],
)
def test_missing_or_wrong_keys_give_401(chatra_sandbox, plain_client_id, header):
    headers = {"Authorization": header} if header else {}
    response = requests.get(
        f"{chatra_sandbox.api_url}/clients/{plain_client_id}", headers=headers, timeout=10
    )
    assert_error(response, 401)
    assert chatra_sandbox.secret_key not in response.text
    entry = chatra_sandbox.request_log()[-1]
    assert entry["auth_ok"] is False
    assert entry["status"] == 401
    assert chatra_sandbox.secret_key not in repr(entry)


def test_auth_scheme_is_case_insensitive(chatra_sandbox, plain_client_id):
    headers = {"Authorization": f"chatra.simple {chatra_sandbox.key_pair}"}
    url = f"{chatra_sandbox.api_url}/clients/{plain_client_id}"
    assert requests.get(url, headers=headers, timeout=10).status_code == 200


def test_post_message_with_agent_id(api, chatra_sandbox, plain_client_id):
    agent = next(iter(chatra_sandbox.store.agents.values()))
    before = time.time() * 1000
    body = {
        "clientId": plain_client_id,
        "text": "Hello from the CRM",
        "agentId": agent.id,
        "receivedFrom": "my-crm",
    }
    response = api.post("/messages/", json=body)
    assert response.status_code == 200
    created = response.json()
    assert len(created["id"]) == 17
    assert set(created["id"]) <= METEOR_CHARS
    assert created["type"] == "agent"
    assert created["isPushed"] is False
    assert created["receivedFrom"] == "my-crm"
    assert created["agentId"] == agent.id
    assert created["agentName"] == agent.name
    assert created["clientId"] == plain_client_id
    assert before - 1000 <= created["createdAt"] <= time.time() * 1000 + 1000
    assert api.get(f"/messages/{created['id']}").json() == created
    assert created["id"] in chatra_sandbox.ids("messages")
    sends = chatra_sandbox.sends()
    assert [(s["resource"], s["id"], s["body"]) for s in sends] == [
        ("messages", created["id"], body)
    ]
    assert sends[0]["response_dropped"] is False


def test_post_message_with_agent_email_and_name(api, plain_client_id):
    body = {
        "clientId": plain_client_id,
        "text": "Hi",
        "agentEmail": "new@example.com",
        "agentName": "New Agent",
    }
    created = api.post("/messages/", json=body).json()
    assert created["agentName"] == "New Agent"
    assert len(created["agentId"]) == 17
    again = api.post("/messages/", json=body).json()
    assert again["agentId"] == created["agentId"]
    assert "receivedFrom" not in created


@pytest.mark.parametrize("path", ["/pushedMessages/", "/pushedMessages"])
def test_post_pushed_message_with_or_without_trailing_slash(api, chatra_sandbox, path):
    client_id = chatra_sandbox.ids("clients")[2]
    response = api.post(path, json={"clientId": client_id, "text": "Your order shipped"})
    assert response.status_code == 200
    created = response.json()
    assert created["isPushed"] is True
    assert created["type"] == "agent"
    assert created["agentId"] in chatra_sandbox.store.agents
    assert api.get(f"/pushedMessages/{created['id']}").json() == created
    assert chatra_sandbox.sends()[-1]["resource"] == "pushedMessages"


def test_post_message_collection_without_trailing_slash(api, plain_client_id):
    body = {"clientId": plain_client_id, "text": "x", "agentId": "AnyAgentIdXXXXXXX"}
    assert api.post("/messages", json=body).status_code == 200


def test_post_pushed_message_with_group_id(api, plain_client_id):
    created = api.post(
        "/pushedMessages/", json={"clientId": plain_client_id, "text": "x", "groupId": "g1"}
    ).json()
    assert created["groupId"] == "g1"
    assert created["agentId"]


def test_post_to_special_client_id(api, chatra_sandbox):
    client_id = "crm/contact/1001"
    created = api.post("/pushedMessages/", json={"clientId": client_id, "text": "x"}).json()
    assert created["clientId"] == client_id


def test_put_agent_message_changes_text(api, chatra_sandbox, agent_message_id):
    response = api.put(f"/messages/{agent_message_id}", json={"text": "Edited"})
    assert response.status_code == 200
    assert response.json()["text"] == "Edited"
    assert api.get(f"/messages/{agent_message_id}").json()["text"] == "Edited"
    assert chatra_sandbox.sends() == []


def test_delete_agent_message_returns_it_and_removes_it(api, chatra_sandbox, agent_message_id):
    original = api.get(f"/messages/{agent_message_id}").json()
    response = api.delete(f"/messages/{agent_message_id}")
    assert response.status_code == 200
    assert response.json() == original
    assert_error(api.get(f"/messages/{agent_message_id}"), 404)
    assert agent_message_id not in chatra_sandbox.ids("messages")


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_client_messages_cannot_be_edited_or_deleted(api, client_message_id, method):
    response = api.request(method, f"/messages/{client_message_id}", json={"text": "x"})
    assert "agent" in assert_error(response, 400)
    assert api.get(f"/messages/{client_message_id}").status_code == 200


def test_put_and_delete_pushed_message(api, chatra_sandbox):
    message_id = chatra_sandbox.ids("pushed_messages")[0]
    assert api.put(f"/pushedMessages/{message_id}", json={"text": "New"}).json()["text"] == "New"
    assert api.delete(f"/pushedMessages/{message_id}").json()["text"] == "New"
    assert_error(api.get(f"/pushedMessages/{message_id}"), 404)


def test_put_client_changes_only_sent_fields_and_null_clears(api, chatra_sandbox):
    client_id = next(
        c for c in chatra_sandbox.ids("clients") if chatra_sandbox.store.clients[c]["email"]
    )
    before = api.get(f"/clients/{quote(client_id, safe='')}").json()
    response = api.put(
        f"/clients/{quote(client_id, safe='')}",
        json={"name": "Renamed", "email": None, "chatId": "ignored", "unknown": 1},
    )
    assert response.status_code == 200
    after = response.json()
    assert after["name"] == "Renamed"
    assert after["email"] is None
    assert after["chatId"] == before["chatId"]
    assert "unknown" not in after
    assert {k: v for k, v in after.items() if k not in {"name", "email"}} == {
        k: v for k, v in before.items() if k not in {"name", "email"}
    }
    assert api.get(f"/clients/{quote(client_id, safe='')}").json() == after


def test_put_client_rejects_non_string_fields(api, plain_client_id):
    assert "phone" in assert_error(api.put(f"/clients/{plain_client_id}", json={"phone": 5}), 400)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"text": "x", "agentId": "a"}, "clientId"),
        ({"clientId": "", "text": "x", "agentId": "a"}, "clientId"),
        ({"clientId": 5, "text": "x", "agentId": "a"}, "clientId"),
        ({"clientId": "C", "agentId": "a"}, "text"),
        ({"clientId": "C", "text": 7, "agentId": "a"}, "text"),
        ({"clientId": "C", "text": "", "agentId": "a"}, "text"),
        ({"clientId": "C", "text": "   ", "agentId": "a"}, "text"),
        ({"clientId": "C", "text": "x" * 5001, "agentId": "a"}, "5000"),
        ({"clientId": "C", "text": "x"}, "agent"),
        ({"clientId": "C", "text": "x", "agentEmail": "a@example.com"}, "agent"),
        ({"clientId": "C", "text": "x", "agentName": "A"}, "agent"),
    ],
)
def test_post_message_validation(api, plain_client_id, body, fragment):
    if body.get("clientId") == "C":
        body = {**body, "clientId": plain_client_id}
    message = assert_error(api.post("/messages/", json=body), 400)
    assert fragment in message
    assert api.server.sends() == []


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b""])
def test_non_object_bodies_give_400(api, data):
    response = api.post("/pushedMessages/", data=data, headers={"Content-Type": "application/json"})
    assert_error(response, 400)


def test_text_of_exactly_5000_characters_is_accepted(api, plain_client_id):
    body = {"clientId": plain_client_id, "text": "é" * 5000}
    assert api.post("/pushedMessages/", json=body).status_code == 200


def test_put_message_validates_text(api, agent_message_id):
    assert_error(api.put(f"/messages/{agent_message_id}", json={"text": ""}), 400)
    assert_error(api.put(f"/messages/{agent_message_id}", json={}), 400)


@pytest.mark.parametrize("path", ["/messages/", "/pushedMessages/"])
def test_post_to_unknown_client_gives_404(api, path):
    body = {"clientId": "no-such-client", "text": "x", "agentId": "a"}
    assert_error(api.post(path, json=body), 404)
    assert api.server.sends() == []


@pytest.mark.parametrize("resource", ["messages", "pushedMessages", "clients"])
def test_unknown_ids_give_404(api, resource):
    assert_error(api.get(f"/{resource}/NoSuchIdXXXXXXXXX"), 404)
    assert_error(api.put(f"/{resource}/NoSuchIdXXXXXXXXX", json={"text": "x"}), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/clients/"),
        ("POST", "/api/clients/"),
        ("GET", "/api/visitors/abc"),
        ("GET", "/api/messages/abc/def"),
        ("GET", "/api/"),
        ("GET", "/"),
        ("GET", "/messages/abc"),
    ],
)
def test_unknown_endpoints_give_404(api, chatra_sandbox, method, path):
    response = api.session.request(method, chatra_sandbox.url + path, timeout=10)
    assert_error(response, 404)


def test_record_path_with_trailing_slash_is_not_the_record(api, agent_message_id):
    assert_error(api.get(f"/messages/{agent_message_id}/"), 404)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/clients/x", "GET, PUT"),
        ("POST", "/messages/x", "GET, PUT, DELETE"),
        ("PATCH", "/pushedMessages/", "POST"),
        ("GET", "/messages/", "POST"),
        ("GET", "/pushedMessages", "POST"),
    ],
)
def test_wrong_method_gives_405(api, method, path, allow):
    response = api.request(method, path)
    assert_error(response, 405)
    assert response.headers["Allow"] == allow
