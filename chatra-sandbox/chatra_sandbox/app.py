"""The Starlette app: the API pipeline (faults, auth, rate limit, endpoints) and admin routes.

Each API request goes through, in order: added latency, a possible connection drop, the key
check (401), the rate limit (429), the endpoint lookup (404/405), injected error answers
(429 bursts, 5xx, failing IDs), the 4xx of a rejected client (POSTs only, by the body's
``clientId``) and finally the endpoint itself, after which a stored POST's answer may still
be dropped or replaced by a gateway's 5xx. Admin requests under ``/_sandbox/`` skip all
of that and are not logged.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatra_sandbox import api
from chatra_sandbox.admin import handle_admin
from chatra_sandbox.connection import DropConnection
from chatra_sandbox.responses import json_error, server_error, too_many_requests
from chatra_sandbox.routing import api_endpoint, split_path

if TYPE_CHECKING:
    from starlette.requests import Request

    from chatra_sandbox.state import SandboxState

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(state: SandboxState) -> Starlette:
    """Return the ASGI app serving the API and the admin endpoints of ``state``."""

    async def dispatch(request: Request) -> Response:
        raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
        parts = split_path(raw_path)
        if parts is not None and len(parts) > 1 and parts[1] == "_sandbox":
            return await handle_admin(state, request, parts[2:])
        return await _handle_api(state, request, raw_path, parts)

    return Starlette(routes=[Route("/{path:path}", dispatch, methods=_METHODS)])


async def _handle_api(
    state: SandboxState, request: Request, raw_path: bytes, parts: list[str] | None
) -> Response:
    under_api = parts is not None and len(parts) > 2 and parts[1] == "api"
    endpoint = api_endpoint(parts[2:]) if parts is not None and under_api else None
    entry: dict[str, Any] = {
        "method": request.method,
        "path": raw_path.decode("latin-1"),
        "record_id": endpoint.record_id if endpoint else None,
        "resource": endpoint.resource if endpoint else None,
        "status": None,
        "t": time.time(),
        "auth_ok": False,
        "fault": None,
    }
    if not under_api:
        return _log(state, entry, json_error(404, "Unknown endpoint."))
    faults, limiter = state.faults, state.limiter
    delay = faults.delay()
    if delay > 0:
        await asyncio.sleep(delay)
    if faults.drop_connection():
        return _log(state, entry, DropConnection(), fault="reset")
    entry["auth_ok"] = state.keys.check(request.headers.get("authorization"))
    if not entry["auth_ok"]:
        status = state.config.wrong_keys_status
        return _log(state, entry, json_error(status, "Unauthorized: missing or wrong API keys."))
    if limiter is not None:
        wait = limiter.check(state.keys.public_key)
        if wait is not None:
            response = too_many_requests(wait, retry_after=faults.config.retry_after)
            return _log(state, entry, response, fault="rate_limit")
    if endpoint is None:
        return _log(state, entry, json_error(404, "Unknown endpoint."))
    if request.method not in endpoint.methods:
        allow = {"Allow": ", ".join(endpoint.methods)}
        return _log(state, entry, json_error(405, "Method not allowed.", allow))
    fault = faults.response_fault(endpoint.record_id)
    if fault is not None:
        if fault.status == 429:
            response = too_many_requests(1, retry_after=faults.config.retry_after)
        else:
            response = server_error(fault.status, html=fault.html)
        return _log(state, entry, response, fault=fault.kind)
    body = await request.body()
    # Collections answer only POST, which creates a message for the body's clientId.
    if endpoint.record_id is None and faults.config.reject_clients:
        rejection = faults.rejection(_client_id(body))
        if rejection is not None:
            response = json_error(
                rejection.status, "Request rejected for this client (injected fault)."
            )
            return _log(state, entry, response, fault=rejection.kind)
    result = api.handle(state.store, request.method, endpoint, body)
    if result.created is not None:
        dropped = faults.drop_after_commit()
        gateway_error = None if dropped else faults.error_after_commit()
        state.log.add_send(
            {
                "resource": endpoint.resource,
                "id": result.created["id"],
                "body": result.request_body,
                "t": time.time(),
                # The client never learns that the message was created.
                "response_dropped": dropped or gateway_error is not None,
            }
        )
        if state.on_message_created is not None:
            state.on_message_created(result.created)
        if dropped:
            return _log(state, entry, DropConnection(), fault="post_reset_after_commit")
        if gateway_error is not None:
            response = server_error(gateway_error.status, html=gateway_error.html)
            return _log(state, entry, response, fault=gateway_error.kind)
    return _log(state, entry, JSONResponse(result.body, status_code=result.status))


def _client_id(body: bytes) -> object:
    # An unreadable body is left to the endpoint, which answers it with a 400.
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload.get("clientId") if isinstance(payload, dict) else None


def _log(
    state: SandboxState, entry: dict[str, Any], response: Response, *, fault: str | None = None
) -> Response:
    if not isinstance(response, DropConnection):
        entry["status"] = response.status_code
    entry["fault"] = fault
    state.log.add_request(entry)
    return response
