"""Logs and the /_sandbox/ admin endpoints, used by out-of-process tests and demos."""

from __future__ import annotations

import json
from urllib.parse import quote

import requests


def test_request_log_entries(api, chatra_sandbox, agent_message_id):
    api.get(f"/messages/{agent_message_id}")
    api.get("/clients/nope")
    first, second = chatra_sandbox.request_log()
    assert first == {
        "method": "GET",
        "path": f"/api/messages/{agent_message_id}",
        "record_id": agent_message_id,
        "resource": "messages",
        "status": 200,
        "t": first["t"],
        "auth_ok": True,
        "fault": None,
    }
    assert second["status"] == 404
    assert second["t"] >= first["t"]


def test_admin_logs_match_in_process_logs(api, chatra_sandbox, plain_client_id):
    api.post("/pushedMessages/", json={"clientId": plain_client_id, "text": "hi"})
    api.get(f"/clients/{plain_client_id}")
    assert api.admin("GET", "/requests").json() == chatra_sandbox.request_log()
    sends = api.admin("GET", "/sends").json()
    assert sends == chatra_sandbox.sends()
    assert sends[0]["body"] == {"clientId": plain_client_id, "text": "hi"}
    # Admin requests are neither authenticated nor logged.
    assert len(chatra_sandbox.request_log()) == 2


def test_reset_log(api, chatra_sandbox, plain_client_id):
    api.post("/pushedMessages/", json={"clientId": plain_client_id, "text": "hi"})
    assert api.admin("POST", "/reset-log").status_code == 200
    assert chatra_sandbox.request_log() == []
    assert chatra_sandbox.sends() == []
    api.get(f"/clients/{plain_client_id}")
    assert len(chatra_sandbox.request_log()) == 1
    chatra_sandbox.reset_log()
    assert chatra_sandbox.request_log() == []


def test_config_over_http(api, chatra_sandbox, agent_message_id):
    response = api.admin("POST", "/config", json={"error_rate": 1.0, "burst_429": [3, 1]})
    assert response.status_code == 200
    assert response.json()["error_rate"] == 1.0
    assert response.json()["burst_429"] == {"every": 3, "count": 1}
    assert api.admin("GET", "/config").json() == chatra_sandbox.config()
    assert api.get(f"/messages/{agent_message_id}").status_code in {500, 502, 503}
    api.admin("POST", "/config", json={"error_rate": 0})
    assert api.get(f"/messages/{agent_message_id}").status_code == 200


def test_config_over_http_rejects_bad_input(api, chatra_sandbox):
    for body in ({"error_rate": "high"}, {"unknown_option": 1}, [1]):
        response = api.admin("POST", "/config", json=body)
        assert response.status_code == 400
        assert response.json()["status"] == 400
    assert chatra_sandbox.config()["error_rate"] == 0


def test_ids_over_http(api, chatra_sandbox):
    for stream in ("messages", "pushed_messages", "clients"):
        assert api.admin("GET", f"/ids/{stream}").json() == chatra_sandbox.ids(stream)
    assert api.admin("GET", "/ids/pushedMessages").json() == chatra_sandbox.ids("pushed_messages")
    assert api.admin("GET", "/ids/agents").status_code == 404


def test_update_client_over_http(api, chatra_sandbox):
    client_id = "crm/contact/1001"
    response = api.admin(
        "POST", f"/clients/{quote(client_id, safe='')}", json={"notes": "VIP", "x": 1}
    )
    assert response.status_code == 200
    fetched = api.get(f"/clients/{quote(client_id, safe='')}").json()
    assert fetched["notes"] == "VIP"
    assert fetched["x"] == 1
    assert chatra_sandbox.store.clients[client_id]["notes"] == "VIP"
    assert api.admin("GET", f"/clients/{quote(client_id, safe='')}").json() == fetched
    assert api.admin("POST", "/clients/nobody", json={"notes": "x"}).status_code == 404
    assert api.admin("POST", f"/clients/{quote(client_id, safe='')}", data=b"[]").status_code == 400


def test_update_client_in_process(api, chatra_sandbox, plain_client_id):
    chatra_sandbox.store.update_client(plain_client_id, email="changed@example.com")
    assert api.get(f"/clients/{plain_client_id}").json()["email"] == "changed@example.com"


def test_info(api, chatra_sandbox):
    info = api.admin("GET", "/info").json()
    assert info["seed"] == 42
    assert info["counts"] == {"messages": 60, "pushed_messages": 15, "clients": 20}
    assert {a["id"] for a in info["agents"]} == set(chatra_sandbox.store.agents)
    assert info["special_client_ids"] == chatra_sandbox.store.special_client_ids()
    assert info["undocumented_key"] == "customFlag"
    flagged = info["ids_with_undocumented_key"]["messages"]
    assert flagged == chatra_sandbox.store.ids_with_undocumented_key("messages")
    assert all("customFlag" in api.get(f"/messages/{i}").json() for i in flagged)


def test_unknown_admin_endpoint(chatra_sandbox):
    response = requests.get(f"{chatra_sandbox.url}/_sandbox/nothing", timeout=10)
    assert response.status_code == 404
    assert response.json()["status"] == 404


def test_log_file_gets_one_json_line_per_request(chatra_sandbox_factory, tmp_path):
    log_file = tmp_path / "requests.jsonl"
    server = chatra_sandbox_factory(log_file=log_file)
    headers = {"Authorization": f"Chatra.Simple {server.key_pair}"}
    requests.get(
        f"{server.api_url}/clients/{server.ids('clients')[0]}", headers=headers, timeout=10
    )
    requests.get(f"{server.api_url}/clients/x", headers={"Authorization": "Basic eDp5"}, timeout=10)
    server.stop()
    lines = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    assert [line["status"] for line in lines] == [200, 401]
    assert lines == server.request_log()
    assert server.secret_key not in log_file.read_text(encoding="utf-8")
