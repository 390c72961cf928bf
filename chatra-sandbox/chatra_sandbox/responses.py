"""HTTP answers shared by the API pipeline: Chatra-style errors and fake proxy pages."""

from __future__ import annotations

import math
from http import HTTPStatus

from starlette.responses import HTMLResponse, JSONResponse, Response

from chatra_sandbox.api import error_body


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Return ``{"status": N, "message": "..."}`` with that status."""
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def too_many_requests(wait: float | None, *, retry_after: bool) -> Response:
    """Return a 429, with ``Retry-After`` (whole seconds, rounded up) if enabled."""
    headers = None
    if retry_after:
        headers = {"Retry-After": str(max(1, math.ceil(wait or 0)))}
    return json_error(429, "Too many requests: rate limit exceeded.", headers)


def server_error(status: int, *, html: bool) -> Response:
    """Return an injected server error, as JSON or as a proxy's HTML page."""
    phrase = HTTPStatus(status).phrase
    if html:
        page = (
            f"<html><head><title>{status} {phrase}</title></head><body>"
            f"<center><h1>{status} {phrase}</h1></center><hr><center>nginx</center>"
            "</body></html>"
        )
        return HTMLResponse(page, status_code=status)
    return json_error(status, f"{phrase} (injected fault).")
