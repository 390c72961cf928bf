"""Record IDs are one escaped path segment: no ID can change which endpoint is called."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from chatra_client import InvalidIdError, collection_path, record_path


@pytest.mark.parametrize(
    "record_id",
    ["../clients/x", "a/b", "?x=1", "#", "...", "%2F", "a b", "user@example.com", "ünï 客户"],
)
def test_every_id_stays_one_segment_and_round_trips(record_id: str) -> None:
    path = record_path("clients", record_id)
    prefix, segment = path.rsplit("/", 1)
    assert prefix == "/clients"
    assert not set(segment) & set("/?# ")
    assert unquote(segment) == record_id


@pytest.mark.parametrize("record_id", ["", " ", "\t\n", None, 17, ".", ".."])
def test_blank_non_string_or_dot_segment_ids_are_refused(record_id: object) -> None:
    with pytest.raises(InvalidIdError, match="Invalid record ID"):
        record_path("messages", record_id)  # type: ignore[arg-type]


def test_unknown_resources_are_refused() -> None:
    with pytest.raises(ValueError, match="Unknown Chatra resource"):
        record_path("../admin", "x")
    assert collection_path("pushedMessages") == "/pushedMessages/"
