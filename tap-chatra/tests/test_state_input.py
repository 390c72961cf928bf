"""A `--state` file the tap cannot resume from ends in one line that says what to do."""

from __future__ import annotations

import io
import json

import pytest

from tap_chatra.errors import StateInputError
from tap_chatra.state_input import read_state_file
from tap_chatra.tap import TapChatra

FIX = "fix or delete the file, or start afresh without it"


BAD_STATES = [
    ("", "is empty"),
    ("  \n", "is empty"),
    ("{not json", "is not JSON (Expecting property name enclosed in double quotes at line 1)"),
    ("[" * 100_000, "is not JSON"),
    ("[1, 2]", "is an array, not a JSON object"),
    ('{"bookmarks": null}', "has 'bookmarks' that is null, not an object"),
    ('{"bookmarks": []}', "has 'bookmarks' that is an array, not an object"),
    ('{"bookmarks": "x"}', "has 'bookmarks' that is a string, not an object"),
    ('{"bookmarks": {"messages": null}}', "has a bookmark for 'messages' that is null"),
    ('{"bookmarks": {"messages": [1]}}', "has a bookmark for 'messages' that is an array"),
    ('{"bookmarks": {"clients": "x"}}', "has a bookmark for 'clients' that is a string"),
]


@pytest.mark.parametrize(("content", "problem"), BAD_STATES)
def test_bad_state_file_is_refused_with_what_to_do(content, problem) -> None:
    file = io.StringIO(content)
    file.name = "state.json"
    with pytest.raises(StateInputError) as refused:
        read_state_file(file)
    message = str(refused.value)
    assert message.startswith(f"--state file state.json {problem}")
    assert FIX in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("content", "problem"), [BAD_STATES[0], BAD_STATES[3], BAD_STATES[6], BAD_STATES[8]]
)
def test_bad_state_file_ends_the_cli_in_one_line(chatra_sandbox, kit, content, problem) -> None:
    state_path = kit.tmp_path / "state.json"
    state_path.write_text(content)
    config = kit.config(chatra_sandbox, message_ids=chatra_sandbox.ids("messages")[:2])
    config_path = kit.tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    result = kit.cli("--config", str(config_path), "--state", str(state_path))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = kit.last_line(result.stderr)
    assert f"--state file {state_path} {problem}" in last
    assert FIX in last
    assert [line for line in result.stderr.splitlines() if " | ERROR " in line] == [last]
    assert chatra_sandbox.request_log() == []


def test_state_given_in_process_is_checked_too() -> None:
    with pytest.raises(StateInputError, match="has 'bookmarks' that is an array"):
        TapChatra(config={"api_key_pair": "a:b"}, state={"bookmarks": []})


def test_a_good_state_file_still_resumes(chatra_sandbox, kit) -> None:
    ids = chatra_sandbox.ids("messages")[:3]
    config = kit.config(chatra_sandbox, message_ids=ids, fetch_message_clients=False)
    first = kit.run(config)
    result = kit.cli(config=config, state=first.last_state)
    assert result.returncode == 0, result.stderr
    assert kit.parse(result.stdout).records("messages") == []
