"""The Singer SDK's standard target tests.

They run as dry runs: the SDK's sample streams carry an `id` on most rows, which this config
maps to a client ID, so their rows would otherwise go out as messages. Every test of the SDK's
target suite applies and none is excluded. `TargetMultipleStateMessages`, which the SDK itself
leaves out of the suite, does not apply: it expects STATE held back and emitted once per
drain, while this target passes each STATE on as soon as the rows before it are settled (and a
dry run passes none on); tests/test_state.py covers STATE instead.
"""

from __future__ import annotations

import pytest
from singer_sdk.testing import get_target_test_class

from target_chatra_push.target import TargetChatraPush

StandardTargetTests = get_target_test_class(
    TargetChatraPush,
    config={"dry_run": True, "client_id_property": "id", "text_template": "{{ row }}"},
)


class TestTargetChatraPushStandard(StandardTargetTests):
    @pytest.fixture(autouse=True)
    def _dry_run_in_tmp_path(self, tmp_path, monkeypatch):
        """Run in an empty folder, and check afterwards that a dry run wrote only its preview."""
        monkeypatch.chdir(tmp_path)
        yield
        written = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
        assert written <= {".chatra-push/preview.jsonl"}
