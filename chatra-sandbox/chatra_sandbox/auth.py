"""The two ways Chatra accepts the key pair: ``Chatra.Simple`` and HTTP Basic."""

from __future__ import annotations

import base64
import binascii
import hmac

DEFAULT_PUBLIC_KEY = "sandbox-public"
DEFAULT_SECRET_KEY = "sandbox-secret"  # noqa: S105 - a fixed test key of the local emulator


class KeyCheck:
    """Checks an ``Authorization`` header against the one account's key pair.

    Args:
        public_key: The account's public key (also the rate limit key).
        secret_key: The account's secret key.
    """

    def __init__(self, public_key: str, secret_key: str) -> None:
        if not public_key or not secret_key or ":" in public_key:
            msg = "The sandbox keys must be non-empty and the public key must not hold ':'."
            raise ValueError(msg)
        self.public_key = public_key
        self._pair = f"{public_key}:{secret_key}".encode()

    def check(self, header: str | None) -> bool:
        """Whether the header carries the right key pair in either accepted form."""
        if not header:
            return False
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "chatra.simple":
            given = value.strip().encode()
        elif scheme == "basic":
            try:
                given = base64.b64decode(value.strip(), validate=True)
            except (binascii.Error, ValueError):
                return False
        else:
            return False
        return hmac.compare_digest(given, self._pair)
