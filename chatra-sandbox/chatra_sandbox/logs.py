"""What the sandbox saw: every API request and every committed POST.

Entries are appended by the server thread and read from any thread. Lists are only ever
appended to or swapped for new ones, and entries are never changed after they are added, so
readers get consistent copies without locking.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, TextIO

Entry = dict[str, Any]


class ActivityLog:
    """The request log and the send log, optionally mirrored to a JSONL file.

    Args:
        log_file: File to which every request entry is appended as one JSON line.
    """

    def __init__(self, log_file: str | Path | None = None) -> None:
        self._requests: list[Entry] = []
        self._sends: list[Entry] = []
        self._file_lock = threading.Lock()
        self._file: TextIO | None = None
        if log_file is not None:
            self._file = Path(log_file).open("a", encoding="utf-8")  # noqa: SIM115

    def add_request(self, entry: Entry) -> None:
        """Record one API request (the entry must never hold a secret)."""
        self._requests.append(entry)
        with self._file_lock:
            if self._file is not None:
                self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self._file.flush()

    def add_send(self, entry: Entry) -> None:
        """Record one committed POST."""
        self._sends.append(entry)

    def requests(self) -> list[Entry]:
        """Return a copy of the request log, oldest first."""
        return list(self._requests)

    def sends(self) -> list[Entry]:
        """Return a copy of the send log, oldest first."""
        return list(self._sends)

    def reset(self) -> None:
        """Forget all logged requests and sends (the JSONL file is kept)."""
        self._requests = []
        self._sends = []

    def close(self) -> None:
        """Close the JSONL file, if any."""
        with self._file_lock:
            if self._file is not None:
                self._file.close()
                self._file = None
