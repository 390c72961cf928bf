"""Request authentication for Chatra's two accepted forms."""

from __future__ import annotations

import base64
import typing as t

from requests.auth import AuthBase

if t.TYPE_CHECKING:
    from requests import PreparedRequest

    from chatra_client.settings import Credentials


class ChatraAuth(AuthBase):
    """Sets the Authorization header: ``Chatra.Simple PUBLIC:SECRET`` or HTTP Basic.

    Usable as ``requests`` auth and as a Singer SDK stream authenticator, which both call it
    with a prepared request.
    """

    def __init__(self, credentials: Credentials, method: str = "chatra_simple") -> None:
        pair = f"{credentials.public_key}:{credentials.secret_key}"
        if method == "basic":
            self._header = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            self._header = f"Chatra.Simple {pair}"

    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        """Add the Authorization header to a prepared request."""
        r.headers["Authorization"] = self._header
        return r

    def __repr__(self) -> str:
        return "ChatraAuth(<keys hidden>)"
