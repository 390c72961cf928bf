"""A corpus of bad input: each yields one clear error or a dead-letter entry, and loses nothing.

"Clear" means: the run ends with a one-line message that names the setting, file, stream or
row at fault, never with a traceback; a row that cannot be sent is dead-lettered with its
reason, and every other row still goes out exactly once.
"""

from __future__ import annotations

import json
import random
import typing as t
from collections import Counter

import pytest

from tap_chatra.id_map import read_ids

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from chatra_sandbox import SandboxServer
    from tests.faults.conftest import Plugins

# (case id, settings to merge into a valid tap config, text the error must contain)
TAP_SETTINGS: list[tuple[str, dict[str, t.Any], str]] = [
    ("key-pair-without-colon", {"api_key_pair": "nocolon"}, "api_key_pair"),
    ("key-pair-half-empty", {"api_key_pair": "public:"}, "api_key_pair"),
    ("public-key-without-secret", {"api_key_pair": None, "public_key": "p"}, "private_key"),
    ("rate-not-a-number", {"requests_per_minute": "fast"}, "requests_per_minute"),
    ("rate-negative", {"requests_per_minute": -3}, "requests_per_minute"),
    ("url-not-http", {"api_url": "ftp://example.com/api"}, "api_url"),
    ("url-plain-http-remote", {"api_url": "http://example.com/api"}, "api_url"),
    ("auth-method-unknown", {"auth_method": "oauth"}, "auth_method"),
    ("concurrency-zero", {"max_concurrency": 0}, "max_concurrency"),
    ("id-file-missing", {"message_ids_file": "/nonexistent/ids.txt"}, "message_ids_file"),
]


@pytest.mark.parametrize(
    ("settings", "needle"),
    [pytest.param(s, n, id=i) for i, s, n in TAP_SETTINGS],
)
def test_tap_malformed_settings(
    plugins: Plugins, chatra_sandbox: SandboxServer, settings: dict[str, t.Any], needle: str
) -> None:
    config = {**plugins.tap_config(chatra_sandbox, message_ids=["x"]), **settings}
    run = plugins.tap({k: v for k, v in config.items() if v is not None})
    run.assert_clear_failure(needle)
    assert chatra_sandbox.request_log() == [], "a request went out despite broken settings"
    assert chatra_sandbox.secret_key not in run.stderr


@pytest.mark.parametrize("case", ["config-not-json", "config-missing"])
def test_tap_config_file_unreadable(plugins: Plugins, case: str) -> None:
    path = plugins.path("config.json")
    if case == "config-not-json":
        path.write_text("api_key_pair: not json\n", encoding="utf-8")
    run = plugins.run([plugins.executable("tap-chatra"), "--config", str(path)])
    run.assert_clear_failure("config")


@pytest.mark.parametrize("plugin", ["tap-chatra", "target-chatra-push"])
def test_number_settings_from_the_environment(
    plugins: Plugins, chatra_sandbox: SandboxServer, plugin: str
) -> None:
    prefix = plugin.upper().replace("-", "_")
    env = plugins.clean_env(**{
        f"{prefix}_API_KEY_PAIR": chatra_sandbox.key_pair,
        f"{prefix}_API_URL": chatra_sandbox.api_url,
        f"{prefix}_REQUESTS_PER_MINUTE": "0",
        f"{prefix}_REQUEST_TIMEOUT": "12.5",
        f"{prefix}_DRY_RUN": "true",
        f"{prefix}_PREVIEW_PATH": str(plugins.path("preview.jsonl")),
        "TAP_CHATRA_MESSAGE_IDS": json.dumps(chatra_sandbox.ids("messages")[:2]),
    })  # fmt: skip
    source = plugins.path("rows.singer")
    rows = plugins.row_messages(plugins.valid_rows(chatra_sandbox.ids("clients"), 2))
    source.write_text("".join(json.dumps(m) + "\n" for m in rows), encoding="utf-8")
    run = plugins.run([plugins.executable(plugin), "--config", "ENV"], stdin=source, env=env)
    run.assert_clean_exit()


TARGET_SETTINGS: list[tuple[str, dict[str, t.Any], str]] = [
    ("key-pair-without-colon", {"api_key_pair": "nocolon"}, "api_key_pair"),
    ("mode-unknown", {"mode": "sms"}, "mode"),
    ("template-syntax-error", {"text_template": "Hi {{ name "}, "text_template"),
    ("stream-template-syntax-error",
     {"stream_settings": {"rows": {"text_template": "{% for %}"}}}, "text_template"),
    ("stream-setting-unknown", {"stream_settings": {"rows": {"bogus": 1}}}, "bogus"),
    ("rate-not-a-number", {"requests_per_minute": "fast"}, "requests_per_minute"),
    ("on-error-unknown", {"on_error": "explode"}, "on_error"),
    ("ledger-not-sqlite", {"ledger_path": "GARBAGE"}, "ledger"),
    ("ledger-folder-not-creatable", {"ledger_path": "/etc/passwd/ledger.sqlite"}, "ledger"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "needle"),
    [pytest.param(s, n, id=i) for i, s, n in TARGET_SETTINGS],
)
def test_target_malformed_settings(
    plugins: Plugins, chatra_sandbox: SandboxServer, settings: dict[str, t.Any], needle: str
) -> None:
    if settings.get("ledger_path") == "GARBAGE":
        garbage = plugins.path("garbage.sqlite")
        garbage.write_bytes(random.Random(1).randbytes(4096))
        settings = {"ledger_path": str(garbage)}
    config = {**plugins.target_config(chatra_sandbox), **settings}
    rows = plugins.valid_rows(chatra_sandbox.ids("clients"), 3)
    run = plugins.target(config, plugins.row_messages(rows, state_every=1))
    run.assert_clear_failure(needle)
    assert chatra_sandbox.sends() == [], "a message went out despite broken settings"
    assert run.states() == [], "STATE passed on for rows that were not sent"


def test_target_config_file_not_json(plugins: Plugins) -> None:
    path = plugins.path("config.json")
    path.write_text("{'api_key_pair': 'single quotes are not JSON'}", encoding="utf-8")
    run = plugins.run([plugins.executable("target-chatra-push"), "--config", str(path)])
    run.assert_clear_failure("config")


def test_tap_id_file_with_garbage_lines(plugins: Plugins, chatra_sandbox: SandboxServer) -> None:
    good = chatra_sandbox.ids("messages")[:12]
    garbage = [
        "",
        "   ",
        "\t",
        "# a comment line",
        "\x00\x01\x02",
        "A" * 5000,
        "<script>alert('x')</script>",
        "🙂🙃",
        "../../../etc/passwd",
        "%2e%2e%2f",
        "id with spaces",
    ]
    lines = [*good[:6], *garbage, f"  {good[6]}  ", *good[6:], good[0], good[1]]
    run = plugins.tap(
        plugins.tap_config(
            chatra_sandbox,
            message_ids_file=str(plugins.write_lines("ids.txt", lines)),
            fetch_message_clients=False,
        )
    )
    run.assert_clean_exit()
    emitted = Counter(run.record_ids("messages"))
    assert set(emitted) == set(good)
    assert max(emitted.values()) == 1
    requests = chatra_sandbox.request_log()
    # Every odd line stayed one escaped path segment: no traversal, nothing outside messages.
    assert {entry["resource"] for entry in requests} == {"messages"}
    assert all(entry["status"] in {200, 404} for entry in requests)
    assert len(requests) == len(set(lines) - {"", "   ", "\t", "# a comment line"}) - 1
    assert "not found" in run.stderr


def test_tap_id_file_with_binary_bytes(plugins: Plugins, chatra_sandbox: SandboxServer) -> None:
    ids_file = plugins.path("ids.txt")
    good = chatra_sandbox.ids("messages")[:3]
    ids_file.write_bytes(
        "\n".join(good).encode() + b"\n\xff\xfe\x00\x80garbage\xc3\x28\n" + good[0].encode()
    )
    run = plugins.tap(plugins.tap_config(chatra_sandbox, message_ids_file=str(ids_file)))
    run.assert_clear_failure("message_ids_file", str(ids_file))
    assert chatra_sandbox.request_log() == []


def test_tap_jsonl_and_csv_id_files_with_bad_rows(
    plugins: Plugins, chatra_sandbox: SandboxServer
) -> None:
    messages = chatra_sandbox.ids("messages")[:4]
    pushed = chatra_sandbox.ids("pushed_messages")[:3]
    jsonl = plugins.path("messages.jsonl")
    jsonl.write_text(
        "\n".join(
            [
                json.dumps({"id": messages[0]}),
                "{not json",
                json.dumps([messages[1]]),
                json.dumps({"id": None}),
                json.dumps({"id": ""}),
                json.dumps({"id": {"nested": 1}}),
                json.dumps({"noid": messages[1]}),
                *(json.dumps({"id": m, "extra": "ignored"}) for m in messages[1:]),
            ]
        ),
        encoding="utf-8",
    )
    csv_file = plugins.path("pushed.csv")
    csv_file.write_text(
        "name,id\n" + f"a,{pushed[0]}\n" + "b,\n" + "c,   \n" + "\n" + f'd,"{pushed[1]}"\n'
        + f"e,{pushed[2]},unexpected-extra-column\n",
        encoding="utf-8",
    )  # fmt: skip
    run = plugins.tap(
        plugins.tap_config(
            chatra_sandbox,
            message_ids_file=str(jsonl),
            pushed_message_ids_file=str(csv_file),
            fetch_message_clients=False,
        )
    )
    run.assert_clean_exit()
    assert sorted(run.record_ids("messages")) == sorted(messages)
    assert sorted(run.record_ids("pushed_messages")) == sorted(pushed)
    for line in (2, 3, 4, 5, 6, 7):
        assert f"line {line}:" in run.stderr, f"JSONL line {line} not reported"
    assert "line 3:" in run.stderr


def test_target_row_corpus_each_bad_row_dead_lettered_once(
    plugins: Plugins, chatra_sandbox: SandboxServer
) -> None:
    client = chatra_sandbox.ids("clients")[0]
    valid = {
        1: "line one\nline two\n\nline four",
        2: "<b>bold</b> <script>alert('x')</script> &amp; &lt;",
        3: "🎉 Order shipped 🚚 — ça va? 你好 👩‍👩‍👧",
        4: "😀" * 5000,
        5: "x" * 5000,
    }
    invalid: dict[int, dict[str, t.Any]] = {
        10: {"client_id": 12345, "text": "client ID of the wrong type"},
        11: {"client_id": client, "text": {"nested": "object"}},
        12: {"client_id": client, "text": None},
        13: {"text": "no client at all"},
        14: {"client_id": client, "text": ""},
        15: {"client_id": client, "text": "x" * 5001},
        16: {"client_id": client, "text": "😀" * 5001},
        17: {"client_id": client, "text": "y" * 1_000_000},
        18: {"client_id": "", "text": "empty client ID"},
        19: {"client_id": client, "text": " \n\t "},
        20: {"client_id": "no-such-client", "text": "Chatra rejects this one (404)"},
    }
    rows = [{"id": n, "client_id": client, "text": text} for n, text in valid.items()]
    rows += [{"id": n, **fields} for n, fields in invalid.items()]
    messages = plugins.row_messages(rows)
    run = plugins.target(plugins.target_config(chatra_sandbox), messages)
    run.assert_clean_exit()

    sent = {send["body"]["text"]: send for send in chatra_sandbox.sends()}
    assert sorted(sent) == sorted(valid.values()), "a valid row was lost or changed"
    letters = plugins.dead_letters()
    keys = Counter(letter["key"] for letter in letters)
    expected = {json.dumps([n]) for n in invalid}
    assert set(keys) == expected, "an invalid row was not dead-lettered"
    assert max(keys.values()) == 1, f"dead-lettered twice: {keys.most_common(2)}"
    for letter in letters:
        assert letter["reason"], letter
        assert letter["kind"] in {"invalid", "rejected"}, letter
    rejected = [letter for letter in letters if letter["key"] == "[20]"]
    assert rejected[0]["kind"] == "rejected"
    assert rejected[0]["status"] == 404
    totals = plugins.report()["totals"]
    assert totals["sent"] == len(valid)
    assert totals["invalid"] + totals["rejected"] == len(invalid)


def test_target_row_without_its_key_property_is_dead_lettered(
    plugins: Plugins, chatra_sandbox: SandboxServer
) -> None:
    rows = plugins.valid_rows(chatra_sandbox.ids("clients"), 4)
    keyless = {"client_id": rows[0]["client_id"], "text": "a row without its key"}
    messages = plugins.row_messages([*rows[:2], keyless, *rows[2:]])
    run = plugins.target(plugins.target_config(chatra_sandbox), messages)
    run.assert_clean_exit()
    assert sorted(plugins.key_of_send(s) for s in chatra_sandbox.sends()) == [0, 1, 2, 3]
    letters = plugins.dead_letters()
    assert [letter["record"]["text"] for letter in letters] == [keyless["text"]]
    assert letters[0]["kind"] == "invalid"
    assert letters[0]["reason"] == "no dedupe key: 'id' is missing or null"


def test_target_template_errors_dead_letter_the_row_only(
    plugins: Plugins, chatra_sandbox: SandboxServer
) -> None:
    client = chatra_sandbox.ids("clients")[0]
    schema = {
        "type": "object",
        "properties": {
            **plugins.row_schema["properties"],
            "name": {"type": ["string", "null"]},
            "days": {"type": ["integer", "null"]},
        },
    }
    rows = [
        {"id": 1, "client_id": client, "name": "Ann", "days": 2},
        {"id": 2, "client_id": client, "days": 2},  # lacks `name`
        {"id": 3, "client_id": client, "name": None, "days": 2},  # prints a null
        {"id": 4, "client_id": client, "name": "Bo", "days": 0},  # divides by zero
        {"id": 5, "client_id": client, "name": "<b>Cy</b>\n🙂", "days": 5},
    ]
    evil = [{"id": 6, "client_id": client, "name": "Di", "days": 1}]
    config = plugins.target_config(
        chatra_sandbox,
        text_template="Hi {{ name }}, your order ships in {{ 10 // days }} days.",
        stream_settings={
            "evil": {"text_template": "{{ row.__class__.__mro__[1].__subclasses__() }}"}
        },
    )
    messages = [
        *plugins.row_messages(rows, schema=schema),
        {"type": "SCHEMA", "stream": "evil", "schema": schema, "key_properties": ["id"]},
        *({"type": "RECORD", "stream": "evil", "record": row} for row in evil),
    ]
    run = plugins.target(config, messages)
    run.assert_clean_exit()
    texts = sorted(send["body"]["text"] for send in chatra_sandbox.sends())
    assert texts == sorted(
        ["Hi Ann, your order ships in 5 days.", "Hi <b>Cy</b>\n🙂, your order ships in 2 days."]
    )
    letters = {(letter["stream"], letter["key"]): letter for letter in plugins.dead_letters()}
    assert set(letters) == {("rows", "[2]"), ("rows", "[3]"), ("rows", "[4]"), ("evil", "[6]")}
    assert "name" in letters[("rows", "[2]")]["reason"]
    assert "ZeroDivisionError" in letters[("rows", "[4]")]["reason"]


def test_tap_html_error_pages_fail_clearly_and_resume(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer]
) -> None:
    sandbox = chatra_sandbox_factory(
        clients=5, messages=10, pushed_messages=0, requests_per_minute=0,
        error_rate=1.0, html_error_share=1.0,
    )  # fmt: skip
    ids = sandbox.ids("messages")
    config = plugins.tap_config(sandbox, message_ids=ids, max_retries=1)
    first = plugins.tap(config)
    # Every ID fails: systemic, so the run stops after a few, naming the first.
    first.assert_clear_failure("messages", ids[0], "IDs answered failed")
    assert "<html" not in first.stderr
    assert "nginx" not in first.stderr
    assert first.record_ids("messages") == []

    sandbox.configure(error_rate=0)
    second = plugins.tap(config, state=first.last_state)
    second.assert_clean_exit()
    assert sorted(second.record_ids("messages")) == sorted(ids)


def test_target_html_error_pages_stop_clearly_and_resume(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer]
) -> None:
    sandbox = chatra_sandbox_factory(
        clients=5, messages=0, pushed_messages=0, requests_per_minute=0,
        error_rate=1.0, html_error_share=1.0,
    )  # fmt: skip
    rows = plugins.valid_rows(sandbox.ids("clients"), 5)
    config = plugins.target_config(sandbox, max_retries=1)
    first = plugins.target(config, plugins.row_messages(rows, state_every=1))
    first.assert_clear_failure("[0]")
    assert "<html" not in first.stderr
    assert "nginx" not in first.stderr
    assert sandbox.sends() == []
    assert first.states() == []

    sandbox.configure(error_rate=0)
    second = plugins.target(config, plugins.row_messages(rows, state_every=1))
    second.assert_clean_exit()
    assert sorted(plugins.key_of_send(s) for s in sandbox.sends()) == list(range(5))


def test_tap_5xx_on_the_last_id_sets_it_aside_and_a_later_run_fetches_it(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer]
) -> None:
    sandbox = chatra_sandbox_factory(clients=8, messages=10, pushed_messages=4,
                                     requests_per_minute=0)  # fmt: skip
    ids = {stream: sandbox.ids(stream) for stream in ("messages", "pushed_messages", "clients")}
    last = ids["clients"][-1]
    sandbox.configure(fail_ids={last: 100})
    config = plugins.tap_config(
        sandbox,
        message_ids=ids["messages"],
        pushed_message_ids=ids["pushed_messages"],
        client_ids=ids["clients"],
        max_retries=1,
    )
    first = plugins.tap(config)
    first.assert_clean_exit()
    assert "clients: set aside 1 failing ID, retried on later runs" in first.stderr
    state = first.last_state
    assert state is not None
    assert set(first.record_ids("clients")) == set(ids["clients"]) - {last}
    assert read_ids(state["bookmarks"]["clients"]["failing"])[last][1] == "1:HTTP 503"

    # Once due (here at once: missing_retry_hours caps the wait), it is fetched and emitted.
    sandbox.configure(fail_ids={})
    second = plugins.tap({**config, "missing_retry_hours": 0}, state=state)
    second.assert_clean_exit()
    assert second.record_ids("clients") == [last]
    for stream, expected in ids.items():
        both = first.record_ids(stream) + second.record_ids(stream)
        assert sorted(both) == sorted(expected), stream


def _seed_failing_only_at(position: int, attempts: int, rate: float) -> int:
    """A fault seed under which, with only `error_rate` on, exactly the requests from
    `position` (0-based) to `position + attempts - 1` are answered 5xx.

    Mirrors chatra_sandbox.faults: per request one draw from random.Random(fault_seed) for
    error_rate (the only fault switched on), and for an error one choice among 500/502/503.
    """
    for seed in range(100_000):
        rng = random.Random(seed)
        outcomes = []
        for _ in range(position + attempts + 1):
            failed = rng.random() < rate
            if failed:
                rng.choice((500, 502, 503))
            outcomes.append(failed)
        if outcomes == [False] * position + [True] * attempts + [False]:
            return seed
    raise AssertionError("no such seed")


def test_target_5xx_on_the_last_row_before_the_final_state(
    plugins: Plugins, chatra_sandbox_factory: Callable[..., SandboxServer]
) -> None:
    rows_count = 5
    seed = _seed_failing_only_at(rows_count - 1, attempts=2, rate=0.5)
    sandbox = chatra_sandbox_factory(
        clients=5, messages=0, pushed_messages=0, requests_per_minute=0, error_rate=0.5,
        fault_seed=seed,
    )  # fmt: skip
    rows = plugins.valid_rows(sandbox.ids("clients"), rows_count)
    config = plugins.target_config(sandbox, max_retries=1)
    first = plugins.target(config, plugins.row_messages(rows, state_every=1))
    last = rows_count - 1
    first.assert_clear_failure(f"[{last}]")
    assert sorted(plugins.key_of_send(s) for s in sandbox.sends()) == list(range(last))
    assert first.last_state == {"last": last - 1}, "the final STATE went out unsettled"

    sandbox.configure(error_rate=0)
    rest = [row for row in rows if row["id"] > first.last_state["last"]]
    second = plugins.target(config, plugins.row_messages(rest, state_every=1))
    second.assert_clean_exit()
    assert second.last_state == {"last": last}
    sent = Counter(plugins.key_of_send(s) for s in sandbox.sends())
    assert sent == Counter(range(rows_count))
