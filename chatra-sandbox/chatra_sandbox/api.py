"""What each Chatra endpoint does to the store, independent of HTTP plumbing."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatra_sandbox.data import Record, RecordMap, SandboxStore
    from chatra_sandbox.routing import Endpoint

MAX_TEXT_LENGTH = 5000
CLIENT_FIELDS = ("name", "email", "phone", "notes")


@dataclass(frozen=True)
class ApiResult:
    """The answer to one API call, and for an accepted POST what was committed."""

    status: int
    body: dict[str, Any]
    created: Record | None = None
    request_body: dict[str, Any] | None = None


class ApiError(Exception):
    """A Chatra-style error answer: ``{"status": N, "message": "..."}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str) -> dict[str, Any]:
    """Return Chatra's error body."""
    return {"status": status, "message": message}


def handle(store: SandboxStore, method: str, endpoint: Endpoint, body: bytes) -> ApiResult:
    """Carry out one API call on the store.

    Args:
        store: The record store.
        method: The HTTP method, already checked against ``endpoint.methods``.
        endpoint: The addressed resource and record ID.
        body: The raw request body.

    Returns:
        The answer; errors are answers too.
    """
    try:
        if endpoint.resource == "clients":
            return _client_call(store, method, endpoint.record_id or "", body)
        pushed = endpoint.resource == "pushedMessages"
        if endpoint.record_id is None:
            return _create_message(store, _json_object(body), pushed=pushed)
        return _message_call(store, method, endpoint.record_id, body, pushed=pushed)
    except ApiError as exc:
        return ApiResult(exc.status, error_body(exc.status, exc.message))


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return payload


def _text(payload: dict[str, Any]) -> str:
    text = payload.get("text")
    if text is None:
        raise ApiError(400, "text is required.")
    if not isinstance(text, str):
        raise ApiError(400, "text must be a string.")
    if not text.strip():
        raise ApiError(400, "text must not be empty.")
    if len(text) > MAX_TEXT_LENGTH:
        raise ApiError(400, f"text must be at most {MAX_TEXT_LENGTH} characters.")
    return text


def _non_empty_string(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"{key} must be a non-empty string.")
    return value


def _message_call(
    store: SandboxStore, method: str, message_id: str, body: bytes, *, pushed: bool
) -> ApiResult:
    records = store.pushed_messages if pushed else store.messages
    if method == "GET":
        return ApiResult(200, _find(records, message_id))
    text = _text(_json_object(body)) if method == "PUT" else ""
    with store.lock:
        record = _find(records, message_id)
        if record["type"] != "agent":
            raise ApiError(400, "Only agent messages can be edited or deleted.")
        if method == "DELETE":
            del records[message_id]
            return ApiResult(200, record)
        updated = {**record, "text": text}
        records[message_id] = updated
        return ApiResult(200, updated)


def _find(records: RecordMap, record_id: str) -> Record:
    try:
        return records[record_id]
    except KeyError:
        raise ApiError(404, "Record not found.") from None


def _create_message(store: SandboxStore, payload: dict[str, Any], *, pushed: bool) -> ApiResult:
    client_id = _non_empty_string(payload, "clientId")
    if client_id is None:
        raise ApiError(400, "clientId is required.")
    text = _text(payload)
    agent_id = _non_empty_string(payload, "agentId")
    group_id = _non_empty_string(payload, "groupId") if pushed else None
    email = name = None
    if not pushed and agent_id is None:
        # Agent messages name their sender by agentId, or by agentEmail plus agentName.
        email = _non_empty_string(payload, "agentEmail")
        name = _non_empty_string(payload, "agentName")
        if email is None or name is None:
            raise ApiError(400, "Either agentId, or agentEmail and agentName, are required.")
    if client_id not in store.clients:
        raise ApiError(404, "Client not found.")
    agent_name: str | None = None
    if email is not None and name is not None:
        agent_id, agent_name = store.agent_for_email(email, name).id, name
    elif agent_id is None:
        # A pushed message without agentId (or with only a groupId) comes from a random agent.
        agent = store.random_agent()
        agent_id, agent_name = agent.id, agent.name
    elif agent_id in store.agents:
        agent_name = store.agents[agent_id].name
    message: Record = {
        "id": store.new_message_id(),
        "type": "agent",
        "text": text,
        "clientId": client_id,
        "agentId": agent_id,
        "agentName": agent_name,
        "createdAt": int(time.time() * 1000),
        "isPushed": pushed,
    }
    if group_id is not None:
        message["groupId"] = group_id
    if "receivedFrom" in payload:
        message["receivedFrom"] = payload["receivedFrom"]
    with store.lock:
        (store.pushed_messages if pushed else store.messages)[message["id"]] = message
    return ApiResult(200, message, created=message, request_body=payload)


def _client_call(store: SandboxStore, method: str, client_id: str, body: bytes) -> ApiResult:
    if method == "GET":
        return ApiResult(200, _find(store.clients, client_id))
    payload = _json_object(body)
    changes = {key: payload[key] for key in CLIENT_FIELDS if key in payload}
    for key, value in changes.items():
        if value is not None and not isinstance(value, str):
            raise ApiError(400, f"{key} must be a string or null.")
    with store.lock:
        updated = {**_find(store.clients, client_id), **changes}
        store.clients[client_id] = updated
    return ApiResult(200, updated)
