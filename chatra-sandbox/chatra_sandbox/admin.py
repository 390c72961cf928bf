"""Admin endpoints under ``/_sandbox/`` for users outside the sandbox's process.

No authentication, no rate limit, no faults, and nothing is written to the request log.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from chatra_sandbox.data import stream_name
from chatra_sandbox.responses import json_error

if TYPE_CHECKING:
    from starlette.requests import Request

    from chatra_sandbox.state import SandboxState


async def handle_admin(state: SandboxState, request: Request, parts: list[str]) -> Response:
    """Answer one admin request; ``parts`` are the decoded path segments after ``/_sandbox``.

    Endpoints: ``GET requests``, ``GET sends``, ``GET info``, ``GET|POST config``,
    ``GET ids/{stream}``, ``GET|POST clients/{id}`` (POST changes the given fields) and
    ``POST reset-log``.
    """
    method = request.method
    match parts:
        case ["requests"] if method == "GET":
            return JSONResponse(state.log.requests())
        case ["sends"] if method == "GET":
            return JSONResponse(state.log.sends())
        case ["reset-log"] if method == "POST":
            state.log.reset()
            return JSONResponse({"ok": True})
        case ["info"] if method == "GET":
            return JSONResponse(_info(state))
        case ["config"] if method == "GET":
            return JSONResponse(state.config.to_json())
        case ["config"] if method == "POST":
            return _configure(state, await _json_object(request))
        case ["ids", stream] if method == "GET":
            try:
                return JSONResponse(state.store.ids(stream_name(stream)))
            except ValueError as exc:
                return json_error(404, str(exc))
        case ["clients", client_id] if method in {"GET", "POST"}:
            return await _client(state, request, client_id)
    return json_error(404, "Unknown admin endpoint.")


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        payload = json.loads(await request.body())
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _info(state: SandboxState) -> dict[str, Any]:
    store = state.store
    streams = ("messages", "pushed_messages", "clients")
    return {
        "seed": store.seed,
        "counts": {stream: len(store.records(stream)) for stream in streams},
        "agents": [{"id": a.id, "name": a.name, "email": a.email} for a in store.agents.values()],
        "special_client_ids": store.special_client_ids(),
        "undocumented_key": store.undocumented_key,
        "ids_with_undocumented_key": {s: store.ids_with_undocumented_key(s) for s in streams},
    }


async def _client(state: SandboxState, request: Request, client_id: str) -> Response:
    fields = await _json_object(request) if request.method == "POST" else {}
    if fields is None:
        return json_error(400, "The request body must be a JSON object.")
    if client_id not in state.store.clients:
        return json_error(404, "Client not found.")
    if fields:
        return JSONResponse(state.store.update_client(client_id, **fields))
    return JSONResponse(state.store.clients[client_id])


def _configure(state: SandboxState, changes: dict[str, Any] | None) -> Response:
    if changes is None:
        return json_error(400, "The request body must be a JSON object.")
    try:
        config = state.configure(**changes)
    except (TypeError, ValueError) as exc:
        return json_error(400, str(exc))
    return JSONResponse(config.to_json())
