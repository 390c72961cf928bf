"""Fault injection over real HTTP: latency, 5xx, HTML errors, 429 bursts, resets, failing IDs."""

from __future__ import annotations

import time

import pytest
import requests


def first_message(api) -> str:
    return api.server.ids("messages")[0]


def timed_get(api, path: str) -> float:
    start = time.monotonic()
    assert api.get(path).status_code == 200
    return time.monotonic() - start


def test_fixed_latency(make_api):
    api = make_api(latency_ms=250)
    assert timed_get(api, f"/messages/{first_message(api)}") >= 0.25
    api.server.configure(latency_ms=0)
    assert timed_get(api, f"/messages/{first_message(api)}") < 0.25


def test_latency_spikes(make_api):
    api = make_api(latency_spike_rate=1.0, latency_spike_ms=250)
    assert timed_get(api, f"/messages/{first_message(api)}") >= 0.25
    api.server.configure(latency_spike_rate=0.0)
    assert timed_get(api, f"/messages/{first_message(api)}") < 0.25


def test_error_rate_gives_json_5xx(make_api):
    api = make_api(error_rate=1.0)
    statuses = set()
    for _ in range(30):
        response = api.get(f"/messages/{first_message(api)}")
        assert response.status_code in {500, 502, 503}
        assert response.json()["status"] == response.status_code
        statuses.add(response.status_code)
    assert statuses == {500, 502, 503}
    assert {e["fault"] for e in api.server.request_log()} == {"error"}


def test_html_error_share(make_api):
    api = make_api(error_rate=1.0, html_error_share=1.0)
    response = api.get(f"/messages/{first_message(api)}")
    assert response.status_code in {500, 502, 503}
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text


def fault_sequence(make_api, **options) -> list[int]:
    api = make_api(**options)
    return [api.get(f"/messages/{first_message(api)}").status_code for _ in range(40)]


def test_faults_are_reproducible_with_the_fault_seed(make_api):
    first = fault_sequence(make_api, error_rate=0.5, fault_seed=7)
    assert first == fault_sequence(make_api, error_rate=0.5, fault_seed=7)
    assert first != fault_sequence(make_api, error_rate=0.5, fault_seed=8)
    assert 5 < first.count(200) < 35


@pytest.mark.parametrize("burst", [{"every": 2, "count": 1}, [2, 1], "2:1"])
def test_burst_429(make_api, burst):
    api = make_api(burst_429=burst)
    responses = [api.get(f"/messages/{first_message(api)}") for _ in range(6)]
    assert [r.status_code for r in responses] == [200, 200, 429, 200, 200, 429]
    assert responses[2].headers["Retry-After"] == "1"
    assert api.server.request_log()[2]["fault"] == "burst_429"


def test_burst_429_without_retry_after(make_api):
    api = make_api(burst_429={"every": 0, "count": 1}, retry_after=False)
    response = api.get(f"/messages/{first_message(api)}")
    assert response.status_code == 429
    assert "Retry-After" not in response.headers


def test_reset_drops_the_connection_without_an_answer(make_api):
    api = make_api(reset_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        api.get(f"/messages/{first_message(api)}")
    entry = api.server.request_log()[-1]
    assert entry["status"] is None
    assert entry["fault"] == "reset"
    api.server.configure(reset_rate=0.0)
    # The same keep-alive session recovers on a new connection.
    assert api.get(f"/messages/{first_message(api)}").status_code == 200


def test_reset_of_a_post_commits_nothing(make_api):
    api = make_api(reset_rate=1.0)
    client_id = api.server.ids("clients")[0]
    with pytest.raises(requests.ConnectionError):
        api.post("/pushedMessages/", json={"clientId": client_id, "text": "x" * 4000})
    assert api.server.sends() == []
    assert len(api.server.ids("pushed_messages")) == 15


def test_fail_ids_fail_the_first_n_requests_for_an_id(make_api):
    api = make_api()
    message_id, other = api.server.ids("messages")[:2]
    api.server.configure(fail_ids={message_id: 2})
    statuses = [api.get(f"/messages/{message_id}").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert api.get(f"/messages/{other}").status_code == 200


def test_fail_ids_match_the_decoded_id(make_api):
    api = make_api(fail_ids={"crm/contact/1001": 1})
    assert api.get("/clients/crm%2Fcontact%2F1001").status_code == 503
    assert api.get("/clients/crm%2Fcontact%2F1001").status_code == 200


def test_post_reset_after_commit_commits_but_drops_the_answer(make_api):
    api = make_api(post_reset_after_commit_rate=1.0)
    client_id = api.server.ids("clients")[0]
    with pytest.raises(requests.ConnectionError):
        api.post("/pushedMessages/", json={"clientId": client_id, "text": "maybe sent"})
    (send,) = api.server.sends()
    assert send["response_dropped"] is True
    assert send["body"] == {"clientId": client_id, "text": "maybe sent"}
    assert api.server.request_log()[-1]["fault"] == "post_reset_after_commit"
    api.server.configure(post_reset_after_commit_rate=0.0)
    assert api.get(f"/pushedMessages/{send['id']}").json()["text"] == "maybe sent"


def test_post_error_after_commit_commits_and_answers_like_a_gateway(make_api):
    api = make_api(post_error_after_commit_rate=1.0, html_error_share=1.0)
    client_id = api.server.ids("clients")[0]
    response = api.post("/pushedMessages/", json={"clientId": client_id, "text": "stored"})
    assert response.status_code in {502, 504}
    assert response.headers["content-type"].startswith("text/html")
    (send,) = api.server.sends()
    assert send["response_dropped"] is True
    assert api.server.request_log()[-1]["fault"] == "post_error_after_commit"
    # GETs are not affected, and the message is there.
    assert api.get(f"/pushedMessages/{send['id']}").json()["text"] == "stored"


def test_rejected_posts_are_not_committed_or_dropped(make_api):
    api = make_api(post_reset_after_commit_rate=1.0)
    response = api.post("/pushedMessages/", json={"clientId": "nobody", "text": "x"})
    assert response.status_code == 404
    assert api.server.sends() == []


@pytest.mark.parametrize("status", [400, 403, 422])
@pytest.mark.parametrize(
    ("path", "extra"), [("/pushedMessages/", {}), ("/messages", {"agentId": "agent-1"})]
)
def test_reject_clients_refuse_posts_to_those_clients(make_api, status, path, extra):
    api = make_api()
    rejected, other = api.server.ids("clients")[:2]
    api.server.configure(reject_clients={rejected: status})

    response = api.post(path, json={"clientId": rejected, "text": "no", **extra})

    assert response.status_code == status
    body = response.json()
    assert body["status"] == status
    assert "rejected" in body["message"]
    assert api.server.sends() == []
    assert len(api.server.ids("messages")) == 60
    assert len(api.server.ids("pushed_messages")) == 15
    entry = api.server.request_log()[-1]
    assert (entry["status"], entry["fault"]) == (status, "reject_client")
    assert api.post(path, json={"clientId": other, "text": "yes", **extra}).status_code == 200
    assert [send["body"]["clientId"] for send in api.server.sends()] == [other]


def test_reject_clients_leave_other_requests_alone(make_api):
    client_id = "crm/contact/1001"
    api = make_api(reject_clients={client_id: 403})
    path = "/clients/crm%2Fcontact%2F1001"
    assert api.get(path).status_code == 200
    assert api.put(path, json={"name": "Still editable"}).status_code == 200

    def post_status() -> int:
        return api.post("/pushedMessages/", json={"clientId": client_id, "text": "x"}).status_code

    # Wrong keys and injected server errors come first.
    api.session.headers["Authorization"] = "Chatra.Simple wrong:keys"
    assert post_status() == 401
    api.session.headers["Authorization"] = f"Chatra.Simple {api.server.key_pair}"
    api.server.configure(error_rate=1.0)
    assert post_status() in {500, 502, 503}
    api.server.configure(error_rate=0.0)
    assert post_status() == 403
    api.server.configure(reject_clients={})
    assert post_status() == 200


def test_reject_clients_in_the_config(api):
    api.server.configure(reject_clients={"a": 422})
    assert api.server.config()["reject_clients"] == {"a": 422}
    assert api.admin("GET", "/config").json()["reject_clients"] == {"a": 422}
    response = api.admin("POST", "/config", json={"reject_clients": {"b": 400}})
    assert response.json()["reject_clients"] == {"b": 400}
    response = api.admin("POST", "/config", json={"reject_clients": {"b": 429}})
    assert response.status_code == 400
    assert "reject_clients['b']" in response.json()["message"]
    assert api.server.config()["reject_clients"] == {"b": 400}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"c": 429}, r"reject_clients\['c'\] must be an HTTP status from 400 to 499 other"),
        ({"c": 200}, r"reject_clients\['c'\] must be .*got 200"),
        ({"c": 500}, r"reject_clients\['c'\] must be .*got 500"),
        ({"c": "403"}, r"reject_clients\['c'\] must be .*got '403'"),
        ({"c": 403.0}, r"reject_clients\['c'\] must be .*got 403.0"),
        ({"c": True}, r"reject_clients\['c'\] must be .*got True"),
        (["c"], "reject_clients must map client IDs to HTTP statuses"),
        ({1: 403}, "reject_clients must map client IDs to HTTP statuses"),
    ],
)
def test_reject_clients_are_validated(chatra_sandbox, chatra_sandbox_factory, value, message):
    with pytest.raises(ValueError, match=message):
        chatra_sandbox.configure(reject_clients=value)
    assert chatra_sandbox.config()["reject_clients"] == {}
    with pytest.raises(ValueError, match=message):
        chatra_sandbox_factory(reject_clients=value)


def test_configure_rejects_unknown_options_and_bad_values(chatra_sandbox):
    with pytest.raises(TypeError, match="nonsense"):
        chatra_sandbox.configure(nonsense=1)
    with pytest.raises(ValueError, match="error_rate"):
        chatra_sandbox.configure(error_rate=2)
    with pytest.raises(ValueError, match="burst_429"):
        chatra_sandbox.configure(burst_429="often")
    with pytest.raises(ValueError, match="retry_after"):
        chatra_sandbox.configure(retry_after="yes")
    assert chatra_sandbox.config()["error_rate"] == 0


def test_options_are_validated_at_construction(chatra_sandbox_factory):
    with pytest.raises(ValueError, match="reset_rate"):
        chatra_sandbox_factory(reset_rate=-0.1)
    with pytest.raises(TypeError, match="typo_rate"):
        chatra_sandbox_factory(typo_rate=0.1)
