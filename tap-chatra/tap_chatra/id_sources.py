"""Where record IDs come from: config lists and ID files (webhook events: see webhook_streams).

Chatra cannot list records, so every ID the tap fetches comes from here or from webhook
events, which the webhook streams read before the REST streams sync. These sources are read
before the first request: an unreadable file stops the run with one line, while a malformed
ID is reported with its file and line and skipped.
"""

from __future__ import annotations

import csv
import json
import typing as t
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from chatra_client import id_problem

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

STREAMS = ("messages", "pushed_messages", "clients")

#: Setting names per stream: the inline list and the file.
LIST_SETTINGS = {
    "messages": "message_ids",
    "pushed_messages": "pushed_message_ids",
    "clients": "client_ids",
}
FILE_SETTINGS = {name: f"{setting}_file" for name, setting in LIST_SETTINGS.items()}

# Past this many malformed IDs in one source, the rest are only counted, not listed.
_MAX_REPORTED = 20


class IdSourceError(Exception):
    """An ID source that cannot be used at all (unreadable file, CSV without an `id` column)."""


@dataclass
class _Problems:
    """Collects malformed-ID reports for one source and logs them, capped."""

    source: str
    logger: logging.Logger
    unit: str = "line"
    count: int = 0

    def report(self, position: int, reason: str) -> None:
        self.count += 1
        if self.count <= _MAX_REPORTED:
            self.logger.warning("%s, %s %d: %s; skipped.", self.source, self.unit, position, reason)

    def close(self) -> None:
        if self.count > _MAX_REPORTED:
            self.logger.warning(
                "%s: %d malformed IDs in all, %d not listed above.",
                self.source,
                self.count,
                self.count - _MAX_REPORTED,
            )


@dataclass
class IdLists:
    """The IDs to fetch per stream, each list in first-seen order without duplicates.

    `done` tells, per stream, which IDs are done for good (a message once fetched): those are
    counted in `left_out` and not kept, so a million IDs already in state cost no memory here.
    An ID listed twice is counted twice.
    """

    ids: dict[str, dict[str, None]] = field(
        default_factory=lambda: {name: {} for name in STREAMS},
    )
    done: Mapping[str, Callable[[str], bool]] = field(default_factory=dict)
    left_out: Counter[str] = field(default_factory=Counter)
    #: Per stream, how many IDs each source gave, in reading order (inline list, file).
    listed: dict[str, list[int]] = field(default_factory=lambda: {name: [] for name in STREAMS})

    def add(self, stream: str, record_ids: Iterable[str]) -> None:
        """Append one source's IDs to a stream's list, keeping the first of any duplicates."""
        target = self.ids[stream]
        done = self.done.get(stream)
        self.listed[stream].append(0)
        for record_id in record_ids:
            self.listed[stream][-1] += 1
            if done is not None and done(record_id):
                self.left_out[stream] += 1
            else:
                target.setdefault(record_id, None)

    def for_stream(self, stream: str) -> list[str]:
        """The IDs for one stream, in order."""
        return list(self.ids[stream])


def _unreadable(path: Path, setting: str, error: Exception) -> IdSourceError:
    if isinstance(error, UnicodeDecodeError):
        return IdSourceError(f"{setting}: cannot read {path}: it is not UTF-8 text.")
    reason = getattr(error, "strerror", None) or type(error).__name__
    return IdSourceError(f"{setting}: cannot read {path}: {reason}.")


def _numbered_lines(path: Path, setting: str) -> Iterator[tuple[int, str]]:
    r"""The file's lines, split on `\n` only (a `\r` before it is dropped), numbered from 1.

    Read one at a time: a file of a million IDs is never held whole, nor split into a list.
    Not `str.splitlines`, which also splits on U+2028, U+2029 and U+0085: JSON allows those
    unescaped inside a string, so a webhook text holding one would be cut in two.

    Raises:
        IdSourceError: If the file cannot be read or is not UTF-8.
    """
    try:
        with path.open("rb") as file:  # binary lines end at b"\n" and nowhere else
            for number, raw in enumerate(file, start=1):
                line = raw.decode("utf-8")
                if number == 1:
                    line = line.removeprefix("\ufeff")
                yield number, line.removesuffix("\n").removesuffix("\r")
    except (OSError, UnicodeDecodeError) as error:
        raise _unreadable(path, setting, error) from None


def _ids_from_text(lines: Iterable[tuple[int, str]], problems: _Problems) -> Iterator[str]:
    # One ID per line. Surrounding whitespace is invisible in a text file, so it is dropped,
    # and blank lines are allowed by the format, so they are skipped without a report.
    for number, line in lines:
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        reason = id_problem(value)
        if reason:
            problems.report(number, reason)
            continue
        yield value


def _ids_from_csv(path: Path, problems: _Problems, setting: str) -> Iterator[str]:
    # The csv module splits rows itself (on \r and \n only, and never inside quotes).
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            reader = csv.DictReader(file)
            if reader.fieldnames is None:
                return
            if "id" not in reader.fieldnames:
                msg = f"{setting}: {path} has no 'id' column in its header line."
                raise IdSourceError(msg)
            for row in reader:
                value = row.get("id")
                reason = id_problem(value) if value is not None else "no 'id' value"
                if reason:
                    problems.report(reader.line_num, reason)
                    continue
                yield t.cast("str", value)
    except (OSError, UnicodeDecodeError) as error:
        raise _unreadable(path, setting, error) from None


def _json_lines(
    lines: Iterable[tuple[int, str]], problems: _Problems
) -> Iterator[tuple[int, dict[str, t.Any]]]:
    for number, line in lines:
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            problems.report(number, "not valid JSON")
            continue
        if not isinstance(value, dict):
            problems.report(number, "not a JSON object")
            continue
        yield number, value


def _ids_from_jsonl(lines: Iterable[tuple[int, str]], problems: _Problems) -> Iterator[str]:
    for number, row in _json_lines(lines, problems):
        if "id" not in row:
            problems.report(number, "no 'id' key")
            continue
        value = row["id"]
        reason = id_problem(value)
        if reason:
            problems.report(number, reason)
            continue
        yield str(value)


def iter_id_file(path: Path, *, setting: str, logger: logging.Logger) -> Iterator[str]:
    """The IDs of a `.csv` (`id` column), `.jsonl` (`id` key) or plain text file, as read.

    Raises:
        IdSourceError: If the file cannot be read or a CSV has no `id` column.
    """
    problems = _Problems(f"{setting} {path}", logger)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _ids_from_csv(path, problems, setting)
    elif suffix in {".jsonl", ".ndjson"}:
        yield from _ids_from_jsonl(_numbered_lines(path, setting), problems)
    else:
        yield from _ids_from_text(_numbered_lines(path, setting), problems)
    problems.close()


def read_id_file(path: Path, *, setting: str, logger: logging.Logger) -> list[str]:
    """Every ID of an ID file, as a list (see `iter_id_file`)."""
    return list(iter_id_file(path, setting=setting, logger=logger))


def _ids_from_setting(values: object, setting: str, logger: logging.Logger) -> list[str]:
    problems = _Problems(f"config {setting}", logger, unit="item")
    ids: list[str] = []
    for number, value in enumerate(values if isinstance(values, list) else [], start=1):
        reason = id_problem(value)
        if reason:
            problems.report(number, reason)
        else:
            ids.append(str(value))
    problems.close()
    return ids


def collect_ids(
    config: Mapping[str, t.Any],
    logger: logging.Logger,
    done: Mapping[str, Callable[[str], bool]] | None = None,
    *,
    limits: Mapping[str, Sequence[int]] | None = None,
) -> IdLists:
    """Read every configured ID list, in order: inline lists, then ID files.

    IDs that `done` says are done for good are only counted (IdLists.left_out). With
    `limits`, only the streams named there are read, each source only up to the count given
    (as `IdLists.listed` counted them): the sources as an earlier run read them, if they only
    grew at the end since.

    Raises:
        IdSourceError: If any configured file cannot be used; nothing has been fetched yet.
    """
    lists = IdLists(done=done or {})
    for stream in STREAMS if limits is None else [s for s in STREAMS if s in limits]:
        counts = list(limits[stream]) if limits is not None else []
        sources: list[Iterable[str]] = []
        setting = LIST_SETTINGS[stream]
        sources.append(_ids_from_setting(config.get(setting), setting, logger))
        if file_name := config.get(FILE_SETTINGS[stream]):
            path = Path(file_name).expanduser()
            sources.append(iter_id_file(path, setting=FILE_SETTINGS[stream], logger=logger))
        for position, source in enumerate(sources):
            if limits is None:
                lists.add(stream, source)
            else:
                count = counts[position] if position < len(counts) else 0
                lists.add(stream, islice(source, count))
    return lists
