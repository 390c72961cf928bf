"""Checking a `--state` file before the SDK reads it: a bad one ends in one line, not a trace.

Meltano writes these files; a person may too, and a hand-edited or truncated file must say
what is wrong and what to do, rather than fail somewhere inside the SDK.
"""

from __future__ import annotations

import json
import typing as t

from tap_chatra.errors import StateInputError
from tap_chatra.records import json_type

if t.TYPE_CHECKING:
    from collections.abc import Mapping

STATE_FIX = (
    "fix or delete the file, or start afresh without it (Meltano: `meltano state clear` or "
    "`meltano run --full-refresh`), which fetches every ID again."
)


def _kind(value: object) -> str:
    kind = json_type(value)
    return kind if kind == "null" else f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def state_problem(state: Mapping[str, t.Any]) -> str | None:
    """What makes a decoded state unusable, in a few words; None when the tap can resume it."""
    if not isinstance(state, dict):
        return f"is {_kind(state)}, not a JSON object"
    if "bookmarks" not in state:
        return None
    bookmarks = state["bookmarks"]
    if not isinstance(bookmarks, dict):
        return f"has 'bookmarks' that is {_kind(bookmarks)}, not an object"
    for stream, bookmark in bookmarks.items():
        if not isinstance(bookmark, dict):
            return f"has a bookmark for '{stream}' that is {_kind(bookmark)}, not an object"
    return None


def read_state_file(file: t.IO[str]) -> str:
    """The text of a `--state` file, checked to hold a state the tap can resume from.

    Raises:
        StateInputError: When the file is empty, not JSON, or not shaped like a state.
    """
    name = getattr(file, "name", "the --state file")
    try:
        text = file.read()
    except (OSError, UnicodeDecodeError) as error:
        reason = "it is not UTF-8 text" if isinstance(error, UnicodeDecodeError) else error
        msg = f"--state file {name} cannot be read ({reason}); {STATE_FIX}"
        raise StateInputError(msg) from None
    if not text.strip():
        msg = f"--state file {name} is empty; {STATE_FIX}"
        raise StateInputError(msg)
    try:
        state = json.loads(text)
    except json.JSONDecodeError as error:
        msg = f"--state file {name} is not JSON ({error.msg} at line {error.lineno}); {STATE_FIX}"
        raise StateInputError(msg) from None
    except (ValueError, RecursionError):
        msg = f"--state file {name} is not JSON the tap can read; {STATE_FIX}"
        raise StateInputError(msg) from None
    problem = state_problem(state)
    if problem:
        msg = f"--state file {name} {problem}; {STATE_FIX}"
        raise StateInputError(msg)
    return text
