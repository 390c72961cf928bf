"""Routing from the raw path: IDs with reserved characters work only when escaped."""

from __future__ import annotations

import http.client
from urllib.parse import quote, urlsplit

import pytest

from chatra_sandbox.routing import Endpoint, api_endpoint, split_path


def raw_get(server, raw_path: str) -> tuple[int, bytes]:
    """Send a GET with exactly this path, which requests would re-quote or normalise."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", raw_path, headers={"Authorization": f"Chatra.Simple {server.key_pair}"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_seeded_special_ids_are_fetched_when_escaped(api, chatra_sandbox):
    special = chatra_sandbox.store.special_client_ids()
    assert {
        "crm/contact/1001",
        "visitor 42",
        "клиент-7",
        "order#55?ref=mail",
        "50%off",
        "tom+news@example.com",
    } <= set(special)
    for client_id in special:
        response = api.get(f"/clients/{quote(client_id, safe='')}")
        assert response.status_code == 200, client_id
        assert response.json()["id"] == client_id
        entry = chatra_sandbox.request_log()[-1]
        assert entry["record_id"] == client_id
        assert entry["path"] == f"/api/clients/{quote(client_id, safe='')}"
        assert entry["resource"] == "clients"


@pytest.mark.parametrize("client_id", ["crm/contact/1001", "order#55?ref=mail"])
def test_unescaped_reserved_characters_do_not_reach_the_record(api, client_id):
    assert api.get(f"/clients/{client_id}").status_code == 404


def test_escaped_dots_are_an_id_and_bare_dots_are_not(chatra_sandbox):
    chatra_sandbox.store.add_client("..")
    status, body = raw_get(chatra_sandbox, "/api/clients/%2E%2E")
    assert status == 200
    assert b'"id":".."' in body
    assert chatra_sandbox.request_log()[-1]["record_id"] == ".."
    assert raw_get(chatra_sandbox, "/api/clients/..")[0] == 404
    assert raw_get(chatra_sandbox, "/api/clients/./..")[0] == 404


def test_plus_is_literal_and_not_a_space(chatra_sandbox):
    status, body = raw_get(chatra_sandbox, "/api/clients/tom+news%40example.com")
    assert status == 200
    assert "tom+news@example.com" in body.decode()


def test_escaped_resource_separator_is_not_a_path_separator(chatra_sandbox):
    assert raw_get(chatra_sandbox, "/api/clients%2Fx")[0] == 404


def test_invalid_utf8_escape_is_404(chatra_sandbox):
    assert raw_get(chatra_sandbox, "/api/clients/%FF%FE")[0] == 404


def test_split_path_decodes_each_segment_after_splitting():
    assert split_path(b"/api/clients/a%2Fb%20c") == ["", "api", "clients", "a/b c"]
    assert split_path(b"/api/clients/%D0%BA") == ["", "api", "clients", "к"]
    assert split_path(b"/api/clients/..") is None


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (["messages", "ABC"], Endpoint("messages", "ABC")),
        (["pushedMessages"], Endpoint("pushedMessages", None)),
        (["pushedMessages", ""], Endpoint("pushedMessages", None)),
        (["clients", "a/b"], Endpoint("clients", "a/b")),
        (["clients"], None),
        (["messages", "a", "b"], None),
        (["messages", "a", ""], None),
        (["other", "a"], None),
        ([], None),
    ],
)
def test_api_endpoint(parts, expected):
    assert api_endpoint(parts) == expected
