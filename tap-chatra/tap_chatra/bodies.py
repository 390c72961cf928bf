"""Reading an answer's body: a JSON object, strictly, or a short reason why it is not one.

`requests` decodes a body that is not UTF-8 by guessing, or with U+FFFD in place of each bad
byte, and Python's JSON reader accepts NaN and recurses without limit. A body that is not
plainly a JSON object is never turned into a record: the ID is set aside with the reason.
"""

from __future__ import annotations

import json
import typing as t

from tap_chatra.records import json_type

#: Deeper bodies are refused: nothing Chatra sends nests this far, and writers recurse.
MAX_DEPTH = 64


class UnusableBodyError(ValueError):
    """Why a body is not a usable JSON object, in a few words (never the body itself)."""


def _refuse_constant(name: str) -> t.NoReturn:
    msg = f"holds {name}, which JSON does not allow"
    raise UnusableBodyError(msg)


def _depth_exceeds(value: object, limit: int) -> bool:
    # Iterative: a recursive walk would itself fail on the bodies it is meant to catch.
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        if children and depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def decode_object(content: bytes) -> dict[str, t.Any]:
    """The JSON object a body holds.

    Raises:
        UnusableBodyError: When the body is empty, not UTF-8, not JSON, holds NaN or Infinity, is
            nested deeper than `MAX_DEPTH`, or is a JSON value other than an object.
    """
    if not content.strip():
        msg = "is empty"
        raise UnusableBodyError(msg)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        msg = "is not UTF-8 text"
        raise UnusableBodyError(msg) from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except UnusableBodyError:
        raise
    except RecursionError:
        msg = f"is JSON nested deeper than {MAX_DEPTH} levels"
        raise UnusableBodyError(msg) from None
    except ValueError:
        msg = "is not JSON"
        raise UnusableBodyError(msg) from None
    if not isinstance(value, dict):
        msg = f"is a JSON {json_type(value)}, not an object"
        raise UnusableBodyError(msg)
    if _depth_exceeds(value, MAX_DEPTH):
        msg = f"is JSON nested deeper than {MAX_DEPTH} levels"
        raise UnusableBodyError(msg)
    return value
