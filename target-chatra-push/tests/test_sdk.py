"""The Singer SDK's standard target tests.

They run as dry runs: the SDK's sample streams carry an `id` on most rows, which this config
maps to a client ID, so their rows would otherwise go out as messages. Every test of the SDK's
target suite applies; two are replaced, each running the SDK's own input: the SDK expects a
row without its key property to stop the run with MissingKeyPropertiesError, while this
target dead-letters that row and goes on; and it expects a RECORD before its SCHEMA to end in
RecordsWithoutSchemaException, while this target stops with one line naming the input line.
`TargetMultipleStateMessages`, which the SDK itself leaves out of the suite, does not apply:
it expects STATE held back and emitted once per drain, while this target passes each STATE on
as soon as the rows before it are settled (and a dry run passes none on); tests/test_state.py
covers STATE instead.
"""

from __future__ import annotations

import json
from importlib import resources

import pytest
from singer_sdk.testing import get_target_test_class

from target_chatra_push.delivery import RunStoppedError
from target_chatra_push.target import TargetChatraPush

CONFIG = {"dry_run": True, "client_id_property": "id", "text_template": "{{ row }}"}
StandardTargetTests = get_target_test_class(TargetChatraPush, config=CONFIG)
SDK_STREAMS = resources.files("singer_sdk.testing") / "target_test_streams"


class TestTargetChatraPushStandard(StandardTargetTests):
    @pytest.fixture(autouse=True)
    def _dry_run_in_tmp_path(self, tmp_path, monkeypatch):
        """Run in an empty folder, and check afterwards that a dry run wrote only its preview."""
        monkeypatch.chdir(tmp_path)
        yield
        written = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
        assert written <= {".chatra-push/preview.jsonl", ".chatra-push/preview.html"}

    def test_target_record_missing_key_property(self, tmp_path):
        """A row without its key property is previewed as invalid and the run goes on."""
        with (SDK_STREAMS / "record_missing_key_property.singer").open(encoding="utf-8") as lines:
            TargetChatraPush(config=CONFIG).listen(file_input=lines)
        preview = (tmp_path / ".chatra-push" / "preview.jsonl").read_text(encoding="utf-8")
        entries = [json.loads(line) for line in preview.splitlines()]
        assert [entry["action"] for entry in entries] == ["invalid"]

    def test_target_record_before_schema(self):
        """A RECORD before its SCHEMA stops the run with one line naming the input line."""
        with (
            (SDK_STREAMS / "record_before_schema.singer").open(encoding="utf-8") as lines,
            pytest.raises(RunStoppedError) as stopped,
        ):
            TargetChatraPush(config=CONFIG).listen(file_input=lines)
        assert str(stopped.value).startswith(
            "Line 1 of the input is bad: a RECORD of stream test_record_before_schema came "
            "before its SCHEMA."
        )
