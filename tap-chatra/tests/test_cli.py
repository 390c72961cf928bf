"""The command line: --about, --discover, --test, --config ENV, --state and valid Singer output."""

from __future__ import annotations

import json

import pytest
from singer_sdk.typing import DEFAULT_JSONSCHEMA_VALIDATOR

ISSUE_SETTINGS = {
    "api_key_pair",
    "public_key",
    "private_key",
    "auth_method",
    "api_url",
    "requests_per_minute",
    "request_timeout",
    "message_ids",
    "pushed_message_ids",
    "client_ids",
    "message_ids_file",
    "pushed_message_ids_file",
    "client_ids_file",
    "webhook_events_file",
    "webhook_inbox_url",
    "webhook_inbox_token",
    "fetch_message_clients",
    "state_flush_seconds",
    "missing_retry_hours",
}


def test_about_json_documents_every_setting_and_marks_secrets(kit) -> None:
    result = kit.cli("--about", "--format", "json")
    assert result.returncode == 0, result.stderr
    about = json.loads(result.stdout)
    properties = about["settings"]["properties"]
    assert set(properties) >= ISSUE_SETTINGS
    undocumented = [name for name, schema in properties.items() if not schema.get("description")]
    assert undocumented == []
    assert {name for name, schema in properties.items() if schema.get("secret")} == {
        "api_key_pair",
        "private_key",
        "webhook_inbox_token",
        "rate_limit_store",  # a postgresql:// URL may hold a password
    }
    assert properties["fetch_message_clients"]["default"] is True
    assert properties["state_flush_seconds"]["default"] == 10
    assert properties["missing_retry_hours"]["default"] == 24
    assert properties["requests_per_minute"]["default"] == 60
    assert set(about["capabilities"]) == {
        "catalog",
        "discover",
        "state",
        "about",
        "stream-maps",
        "schema-flattening",
        "structured-logging",
    }


def test_about_markdown(kit) -> None:
    result = kit.cli("--about", "--format", "markdown")
    assert result.returncode == 0, result.stderr
    assert "# `tap-chatra`" in result.stdout
    assert "webhook_events_file" in result.stdout


def test_discover_needs_no_credentials(kit) -> None:
    result = kit.cli("--discover")
    assert result.returncode == 0, result.stderr
    catalog = json.loads(result.stdout)
    streams = {entry["tap_stream_id"]: entry for entry in catalog["streams"]}
    assert list(streams) == [
        "webhook_events",
        "chat_messages",
        "messages",
        "pushed_messages",
        "clients",
    ]
    for name in ("messages", "pushed_messages", "clients"):
        assert streams[name]["key_properties"] == ["id"]
        assert "replication_key" not in streams[name]
    assert streams["webhook_events"]["key_properties"] == ["seq"]
    assert streams["chat_messages"]["key_properties"] == ["key"]
    for name in ("webhook_events", "chat_messages"):
        assert streams[name]["replication_key"] == "seq"
        assert streams[name]["replication_method"] == "INCREMENTAL"
    for entry in streams.values():
        DEFAULT_JSONSCHEMA_VALIDATOR.check_schema(entry["schema"])
        assert (
            "extra" in entry["schema"]["properties"] or entry["tap_stream_id"] == "webhook_events"
        )
    assert streams["webhook_events"]["schema"]["properties"]["payload"]["type"] == "object"
    for name in ("messages", "chat_messages"):
        assert streams[name]["schema"]["properties"]["created_at"]["format"] == "date-time"


def test_connection_test_makes_one_request(chatra_sandbox, kit) -> None:
    result = kit.cli("--test", config=kit.config(chatra_sandbox))
    assert result.returncode == 0, result.stderr
    assert "Connection test passed" in kit.last_line(result.stderr)
    assert result.stdout == ""
    assert len(chatra_sandbox.request_log()) == 1


def test_connection_test_with_wrong_keys_fails_with_one_line(chatra_sandbox, kit) -> None:
    config = kit.config(chatra_sandbox, api_key_pair="sandbox-public:wrong")
    result = kit.cli("--test", config=config)
    assert result.returncode == 1
    last = kit.last_line(result.stderr)
    assert "Connection test failed" in last
    assert "Check the Chatra public and secret keys" in last
    assert "Traceback" not in result.stderr
    assert len(chatra_sandbox.request_log()) == 1


def test_schema_test_writes_schemas_without_requests(chatra_sandbox, kit) -> None:
    result = kit.cli("--test=schema", config=kit.config(chatra_sandbox))
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["stream"] for line in result.stdout.splitlines()] == [
        "webhook_events",
        "chat_messages",
        "messages",
        "pushed_messages",
        "clients",
    ]
    assert chatra_sandbox.request_log() == []


def test_config_from_environment(chatra_sandbox, kit) -> None:
    ids = chatra_sandbox.ids("pushed_messages")[:3]
    env = {
        "TAP_CHATRA_API_KEY_PAIR": chatra_sandbox.key_pair,
        "TAP_CHATRA_API_URL": chatra_sandbox.api_url,
        "TAP_CHATRA_PUSHED_MESSAGE_IDS": json.dumps(ids),
        "TAP_CHATRA_FETCH_MESSAGE_CLIENTS": "false",
        "TAP_CHATRA_REQUESTS_PER_MINUTE": "0",
        "TAP_CHATRA_REQUEST_TIMEOUT": "7.5",
    }
    # A file given alongside ENV adds its settings to the environment's.
    extra = kit.tmp_path / "extra.json"
    extra.write_text(json.dumps({"max_concurrency": 2}))
    result = kit.cli("--config", str(extra), "--config", "ENV", env=env)
    assert result.returncode == 0, result.stderr
    output = kit.parse(result.stdout)
    assert output.ids("pushed_messages") == ids
    assert output.records("clients") == []


def _assert_valid_singer(output) -> None:
    schemas: dict[str, dict] = {}
    for message in output.messages:
        kind = message["type"]
        assert kind in {"SCHEMA", "RECORD", "STATE"}
        if kind == "SCHEMA":
            DEFAULT_JSONSCHEMA_VALIDATOR.check_schema(message["schema"])
            schemas[message["stream"]] = message["schema"]
        elif kind == "RECORD":
            validator = DEFAULT_JSONSCHEMA_VALIDATOR(
                schemas[message["stream"]],
                format_checker=DEFAULT_JSONSCHEMA_VALIDATOR.FORMAT_CHECKER,
            )
            errors = [error.message for error in validator.iter_errors(message["record"])]
            assert errors == [], (message["stream"], errors)


@pytest.mark.parametrize("auth_method", ["chatra_simple", "basic"])
def test_cli_sync_gives_valid_singer_output_and_resumes_from_state(
    chatra_sandbox, kit, auth_method
) -> None:
    files = chatra_sandbox.write_id_files(kit.tmp_path)
    config = kit.config(
        chatra_sandbox,
        auth_method=auth_method,
        message_ids_file=str(files["messages"]),
        pushed_message_ids_file=str(files["pushed_messages"]),
    )
    result = kit.cli(config=config)
    assert result.returncode == 0, result.stderr
    first = kit.parse(result.stdout)
    _assert_valid_singer(first)
    assert len(first.records("messages")) == len(chatra_sandbox.ids("messages"))
    assert first.records("clients")
    undocumented = [r for r in first.records("messages") if "customFlag" in r["extra"]]
    assert undocumented  # the sandbox's undocumented key is kept, in `extra`
    assert all(r["created_at"].endswith("+00:00") for r in first.records("messages"))

    chatra_sandbox.reset_log()
    second = kit.cli(config=config, state=first.last_state)
    assert second.returncode == 0, second.stderr
    assert kit.parse(second.stdout).records("messages") == []
    assert kit.parse(second.stdout).records("clients") == []
    # Messages are fetched once ever; their clients, fetched by the first run and named by no
    # new message since, are not due again for client_refresh_hours.
    assert chatra_sandbox.request_log() == []


#: The logging config Meltano hands a plugin with the structured-logging capability.
MELTANO_JSON_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"singer": {"()": "singer_sdk.logging.StructuredFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "singer",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["console"]},
}


@pytest.mark.parametrize("args", [(), ("--test",)], ids=["sync", "test"])
def test_missing_keys_end_with_one_plain_line_naming_the_variable(kit, tmp_path, args) -> None:
    """`meltano config test` shows a failed run's last stderr line as it is: not JSON."""
    logging_config = tmp_path / "logging.json"
    logging_config.write_text(json.dumps(MELTANO_JSON_LOGGING))
    result = kit.cli(*args, config={}, env={"SINGER_SDK_LOG_CONFIG": str(logging_config)})
    assert result.returncode == 1
    last = kit.last_line(result.stderr)
    assert not last.startswith("{"), last
    assert "TAP_CHATRA_API_KEY_PAIR=PUBLIC_KEY:SECRET_KEY" in last
    assert "meltano config set tap-chatra api_key_pair" in last
    # The JSON log still carries it, at level error, for whoever reads the logs as JSON.
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(r["level"] == "error" and "TAP_CHATRA_API_KEY_PAIR" in r["message"] for r in records)
    assert "Traceback" not in result.stderr


def test_the_catalog_says_every_stream_is_incremental(kit) -> None:
    """Per-ID state makes the REST streams incremental by ID: no single replication key."""
    catalog = json.loads(kit.cli("--discover").stdout)
    for entry in catalog["streams"]:
        stream_metadata = next(m["metadata"] for m in entry["metadata"] if m["breadcrumb"] == [])
        assert entry["replication_method"] == "INCREMENTAL", entry["tap_stream_id"]
        if entry["tap_stream_id"] in {"webhook_events", "chat_messages"}:
            assert entry["replication_key"] == "seq"
            assert stream_metadata["valid-replication-keys"] == ["seq"]
        else:
            assert stream_metadata["forced-replication-method"] == "INCREMENTAL"
            assert "replication_key" not in entry
            assert "valid-replication-keys" not in stream_metadata


def test_the_log_says_incremental_and_what_state_the_run_resumes_from(chatra_sandbox, kit) -> None:
    path, _ = kit.events_file(chatra_sandbox, 2)
    config = kit.config(
        chatra_sandbox,
        webhook_events_file=str(path),
        message_ids=chatra_sandbox.ids("messages"),
        client_ids=chatra_sandbox.ids("clients"),
    )
    first = kit.run(config)

    runs = []
    for state in (None, first.last_state):
        result = kit.cli(config=config, state=state)
        assert result.returncode == 0, result.stderr[-2000:]
        runs.append(result.stderr)
    fresh, resumed = runs

    for stream in ("webhook_events", "chat_messages", "messages", "pushed_messages", "clients"):
        assert f"Beginning sync of '{stream}' in incremental mode" in fresh
        assert "full_table" not in fresh
    assert "messages: incremental by ID: no ID fetched before in STATE" in fresh
    assert "webhook_events: no event seq in STATE: reading from the first." in fresh

    fetched = len(first.ids("messages"))
    assert fetched > 0
    assert (
        f"messages: incremental by ID: resuming from STATE, which holds {fetched} IDs fetched "
        "by earlier runs; each is not fetched again." in resumed
    )
    clients = len(first.ids("clients"))
    assert f"clients: incremental by ID: resuming from STATE, which holds {clients} IDs" in resumed
    last_seq = first.records("webhook_events")[-1]["seq"]
    assert f"webhook_events: resuming from STATE at event seq {last_seq}." in resumed
