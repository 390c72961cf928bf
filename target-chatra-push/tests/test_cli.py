"""The command line as Meltano runs it: exit codes, the last line, and what is printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from target_chatra_push.target import TargetChatraPush

RESOURCES = Path(__file__).parent / "resources"
SECRET = "s3cr3t-never-printed"
OWN_SETTINGS = (
    "mode", "client_id_property", "text_property", "text_template", "agent_id",
    "agent_id_property", "group_id", "group_id_property", "agent_email", "agent_name",
    "received_from", "dedupe_key_properties", "sent_ids_path", "stream_settings", "ledger_path",
    "dead_letter_path", "on_error", "retry_failed", "resend_unconfirmed",
    "max_unconfirmed_in_a_row", "resend_changed",
    "max_sends_per_run", "dry_run", "preview_path", "report_path", "preview_html_path",
    "report_html_path",
)  # fmt: skip


def run_cli(config: dict, singer: str, tmp_path: Path, *, loglevel: str = "INFO"):
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    return subprocess.run(
        [sys.executable, "-m", "target_chatra_push", "--config", str(config_file)],
        input=(RESOURCES / singer).read_text("utf-8"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "TARGET_CHATRA_PUSH_LOGLEVEL": loglevel},
    )


def test_bad_keys_exit_non_zero_with_one_line_naming_the_fix(sandbox, kit, tmp_path):
    config = kit.config(sandbox, api_key_pair=f"{sandbox.public_key}:wrong")
    done = run_cli(config, "orders.singer", tmp_path)

    assert done.returncode == 1
    last_line = done.stderr.strip().splitlines()[-1]
    assert "HTTP 401" in last_line
    assert "Settings > Preferences > API keys" in last_line
    assert "Traceback" not in done.stderr
    assert len(sandbox.request_log()) == 1
    assert done.stdout == ""


def test_secret_never_printed_at_debug(sandbox_with, kit, tmp_path):
    sandbox = sandbox_with(secret_key=SECRET)
    good = run_cli(kit.config(sandbox), "orders_bad_rows.singer", tmp_path, loglevel="DEBUG")
    wrong = f"{sandbox.public_key}:{SECRET}-wrong"
    bad = run_cli(
        kit.config(sandbox, api_key_pair=wrong), "orders.singer", tmp_path, loglevel="DEBUG"
    )

    assert good.returncode == 0, good.stderr
    assert bad.returncode == 1
    assert "| DEBUG" in good.stderr  # the level really was DEBUG
    for output in (good.stdout, good.stderr, bad.stdout, bad.stderr):
        assert SECRET not in output
    for written in (kit.dead_letter_path, kit.report_path, kit.ledger_path, kit.sent_ids_path):
        assert SECRET.encode() not in written.read_bytes()


def test_meltano_config_test_passes_and_sends_nothing(sandbox, kit, tmp_path):
    done = run_cli(kit.config(sandbox), "meltano_config_test.singer", tmp_path)

    assert done.returncode == 0, done.stderr
    # Meltano's loader test fails on any output line mentioning "error" or "exception".
    output = (done.stdout + done.stderr).lower()
    assert "error" not in output
    assert "exception" not in output
    assert [r["method"] for r in sandbox.request_log()] == ["GET"]
    assert sandbox.sends() == []


def test_every_setting_documents_itself():
    properties = TargetChatraPush.config_jsonschema["properties"]

    for name in OWN_SETTINGS:
        assert properties[name].get("title"), name
        assert properties[name].get("description"), name
    assert properties["api_key_pair"].get("secret") is True
    assert properties["private_key"].get("secret") is True
    assert properties["mode"]["enum"] == ["pushed_message", "agent_message"]
    assert properties["on_error"]["enum"] == ["continue", "fail"]
    nested = properties["stream_settings"]["additionalProperties"]["properties"]
    assert "default" not in nested["mode"]  # overrides stay sparse under default filling
