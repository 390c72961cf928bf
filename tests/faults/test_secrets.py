"""The secret key never leaves the config: not in stdout, stderr, logs or any file written.

Every run is at DEBUG (the SDK reads `LOGLEVEL` / `<PLUGIN>_LOGLEVEL`), with a distinctive
secret, through the paths that print the most: retries, 404s, 401s, exhausted retries,
dead letters, rejections, dry-run previews, reports, the ledger, `--test`, `--discover` and
settings from the environment. Then every file the runs wrote is scanned, byte for byte, for
the secret and for the encodings an auth header would carry.
"""

from __future__ import annotations

import base64
import json
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from chatra_sandbox import SandboxServer
    from tests.faults.conftest import Plugins, Run

PUBLIC = "faults-public"
SECRET = "Zq9xSECRETq7w3-faults"
WRONG_SECRET = "Wr0ngSECRETk4p2-faults"
# Files the tests themselves write with the secret in them: the plugins' inputs.
INPUTS = {"tap.json", "target.json"}


def forms(secret: str) -> list[bytes]:
    """The secret as it could leak: plain, and inside a Basic or Chatra.Simple header."""
    pair = f"{PUBLIC}:{secret}".encode()
    return [secret.encode(), base64.b64encode(pair), base64.b64encode(secret.encode())]


def debug_env(plugins: Plugins, prefix: str, **extra: str) -> dict[str, str]:
    return plugins.clean_env(LOGLEVEL="DEBUG", **{f"{prefix}_LOGLEVEL": "DEBUG"}, **extra)


def assert_no_leak(plugins: Plugins, runs: list[Run]) -> None:
    debug_runs = [run for run in runs if " | DEBUG " in run.stderr]
    assert debug_runs, "no run logged at DEBUG; the test proves nothing"
    leaks = []
    for path in sorted(Path(plugins.folder).rglob("*")):
        if not path.is_file() or path.name in INPUTS:
            continue
        content = path.read_bytes()
        for secret in (SECRET, WRONG_SECRET):
            leaks += [f"{path.name}: {form!r}" for form in forms(secret) if form in content]
    assert leaks == [], f"secret found in: {leaks}"


def test_tap_never_writes_the_secret(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer]
) -> None:
    sandbox = chatra_sandbox_factory(
        seed=5, clients=8, messages=15, pushed_messages=3, requests_per_minute=0,
        public_key=PUBLIC, secret_key=SECRET,
        error_rate=0.2, html_error_share=0.5, burst_429={"every": 10, "count": 1},
    )  # fmt: skip
    env = debug_env(plugins, "TAP_CHATRA")
    ids = sandbox.ids("messages")
    config = plugins.tap_config(
        sandbox, message_ids=[*ids, "NoSuchId000000001"],
        pushed_message_ids=sandbox.ids("pushed_messages"),
    )  # fmt: skip
    runs = [plugins.tap(config, env=env)]
    # The error paths have been logged; the other runs need no faults to show their output.
    sandbox.configure(error_rate=0, burst_429=None)
    runs += [
        plugins.tap({**config, "auth_method": "basic"}, env=env),
        plugins.tap(config, args=["--test"], env=env),
        plugins.tap(config, args=["--discover"], env=env),
        plugins.tap(config, args=["--about", "--format=json"], env=env),
    ]
    for run in runs:
        run.assert_clean_exit()
    assert runs[0].record_ids("messages")
    # Settings from the environment, as Meltano passes them.
    from_env = {**env, "TAP_CHATRA_API_KEY_PAIR": sandbox.key_pair,
                "TAP_CHATRA_API_URL": sandbox.api_url,
                "TAP_CHATRA_MESSAGE_IDS": json.dumps(ids[:1]),
                "TAP_CHATRA_FETCH_MESSAGE_CLIENTS": "false"}  # fmt: skip
    runs.append(plugins.run([plugins.executable("tap-chatra"), "--config", "ENV"], env=from_env))
    runs[-1].assert_clean_exit()

    wrong = {**config, "api_key_pair": f"{PUBLIC}:{WRONG_SECRET}"}
    runs.append(plugins.tap(wrong, env=env))
    runs[-1].assert_clear_failure("HTTP 401")
    disagree = {**config, "public_key": PUBLIC, "private_key": WRONG_SECRET}
    runs.append(plugins.tap(disagree, env=env))
    runs[-1].assert_clear_failure("api_key_pair")
    sandbox.configure(error_rate=1.0)
    runs.append(plugins.tap({**config, "max_retries": 1}, env=env))
    runs[-1].assert_clear_failure("Gave up")
    assert_no_leak(plugins, runs)


def test_target_never_writes_the_secret(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer]
) -> None:
    sandbox = chatra_sandbox_factory(
        seed=5, clients=5, messages=0, pushed_messages=0, requests_per_minute=0,
        public_key=PUBLIC, secret_key=SECRET,
        error_rate=0.2, html_error_share=0.5, post_reset_after_commit_rate=0.1,
    )  # fmt: skip
    env = debug_env(plugins, "TARGET_CHATRA_PUSH")
    rows = plugins.valid_rows(sandbox.ids("clients"), 12)
    rows += [
        {"id": 100, "client_id": "no-such-client", "text": "rejected"},
        {"id": 101, "client_id": sandbox.ids("clients")[0], "text": ""},
    ]
    messages = plugins.row_messages(rows, state_every=4)
    config = plugins.target_config(sandbox, sent_ids_path=str(plugins.path("sent-ids.txt")))
    runs = [
        plugins.target({**config, "dry_run": True}, messages, env=env),
        plugins.target(config, messages, env=env),
        plugins.target(config, messages, env=env),
        plugins.target(
            config,
            [{"type": "SCHEMA", "stream": "meltano_test_stream", "key_properties": [],
              "schema": {"type": "object", "properties": {"x": {"type": "string"}}}},
             {"type": "RECORD", "stream": "meltano_test_stream", "record": {"x": "1"}}],
            env=env,
        ),
    ]  # fmt: skip
    for run in runs:
        run.assert_clean_exit()
    assert sandbox.sends(), "nothing was sent; the test proves nothing"
    assert plugins.path("preview.jsonl").exists()
    assert plugins.path("dead-letter.jsonl").exists()

    from_env = {**env, "TARGET_CHATRA_PUSH_PUBLIC_KEY": PUBLIC,
                "TARGET_CHATRA_PUSH_PRIVATE_KEY": SECRET,
                "TARGET_CHATRA_PUSH_API_URL": sandbox.api_url,
                "TARGET_CHATRA_PUSH_LEDGER_PATH": str(plugins.path("ledger.sqlite"))}  # fmt: skip
    source = plugins.path("env-input.singer")
    source.write_text("".join(json.dumps(m) + "\n" for m in messages), encoding="utf-8")
    runs.append(
        plugins.run(
            [plugins.executable("target-chatra-push"), "--config", "ENV"], stdin=source,
            env=from_env,
        )
    )  # fmt: skip
    runs[-1].assert_clean_exit()

    # A fresh ledger beside the earlier runs' files: new_ledger_ok lets it start.
    wrong = {**config, "api_key_pair": f"{PUBLIC}:{WRONG_SECRET}", "ledger_path":
             str(plugins.path("other-ledger.sqlite")), "new_ledger_ok": True}  # fmt: skip
    runs.append(plugins.target(wrong, messages, env=env))
    runs[-1].assert_clear_failure("401")
    assert_no_leak(plugins, runs)
