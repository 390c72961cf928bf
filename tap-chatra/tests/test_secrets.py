"""The secret key never reaches the output or the logs, even at DEBUG and on errors."""

from __future__ import annotations

import base64

import pytest

SECRET = "zebra-SECRET-4242-never-print-me"


def _forms_of_secret(public_key: str) -> list[str]:
    pair = f"{public_key}:{SECRET}"
    return [
        SECRET,
        base64.b64encode(pair.encode()).decode(),
        base64.b64encode(SECRET.encode()).decode(),
    ]


@pytest.mark.parametrize("auth_method", ["chatra_simple", "basic"])
def test_debug_cli_run_with_faults_never_prints_the_secret(
    chatra_sandbox_factory, kit, auth_method
) -> None:
    server = chatra_sandbox_factory(
        secret_key=SECRET, requests_per_minute=0, error_rate=0.3, fault_seed=2, html_error_share=0.5
    )
    ids = [*server.ids("messages")[:8], "NoSuchMessage0007"]
    config = kit.config(server, auth_method=auth_method, message_ids=ids, max_retries=8)
    result = kit.cli(config=config, env={"TAP_CHATRA_LOGLEVEL": "DEBUG"})

    assert result.returncode == 0, result.stderr[-2000:]
    assert "| DEBUG" in result.stderr  # it really ran at DEBUG
    assert any(entry["status"] >= 500 for entry in server.request_log())
    for form in _forms_of_secret(server.public_key):
        assert form not in result.stdout
        assert form not in result.stderr


def test_refused_keys_and_connection_test_never_print_the_secret(
    chatra_sandbox_factory, kit
) -> None:
    server = chatra_sandbox_factory(secret_key=SECRET)
    wrong_public = kit.config(server, api_key_pair=f"someone-else:{SECRET}", message_ids=["A"])
    env = {"TAP_CHATRA_LOGLEVEL": "DEBUG"}
    runs = [
        kit.cli(config=wrong_public, env=env),
        kit.cli("--test", config=wrong_public, env=env),
        kit.cli("--test", config=kit.config(server), env=env),
        kit.cli(
            config={**kit.config(server), "api_key_pair": None, "private_key": SECRET}, env=env
        ),
    ]
    assert [run.returncode for run in runs] == [1, 1, 0, 1]
    for run in runs:
        for form in [*_forms_of_secret(server.public_key), *_forms_of_secret("someone-else")]:
            assert form not in run.stdout
            assert form not in run.stderr


def test_in_process_debug_logs_never_hold_the_secret(chatra_sandbox_factory, kit, caplog) -> None:
    server = chatra_sandbox_factory(secret_key=SECRET)
    output = kit.run(kit.config(server, message_ids=server.ids("messages")[:5]))
    assert len(output.records("messages")) == 5
    assert any(record.levelname == "DEBUG" for record in caplog.records)
    for form in _forms_of_secret(server.public_key):
        assert form not in caplog.text
        assert all(form not in line for line in output.lines)
