"""The target's own settings: how a row becomes a message, and how delivery is kept safe.

The connection settings (keys, URL, pacing) come from chatra_client and are listed first.
The mapping settings can be set once for every stream and again, per stream, under
`stream_settings`; the delivery settings apply to the whole run.
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

PUSHED_MESSAGE = "pushed_message"
AGENT_MESSAGE = "agent_message"
MODES = (PUSHED_MESSAGE, AGENT_MESSAGE)
ON_ERROR_CHOICES = ("continue", "fail")

DEFAULT_RECEIVED_FROM = "target-chatra-push"
DEFAULT_LEDGER_PATH = ".chatra-push/ledger.sqlite"
DEFAULT_DEAD_LETTER_PATH = ".chatra-push/dead-letter.jsonl"
DEFAULT_PREVIEW_PATH = ".chatra-push/preview.jsonl"

# Defaults of the mapping settings; under `stream_settings` they are left out of the schema so
# that the SDK's default filling does not turn every per-stream override into a full copy.
MAPPING_DEFAULTS: dict[str, t.Any] = {
    "mode": PUSHED_MESSAGE,
    "client_id_property": "client_id",
    "text_property": "text",
    "received_from": DEFAULT_RECEIVED_FROM,
}


def _mapping_property(
    name: str,
    wrapped: t.Any,
    *,
    with_defaults: bool,
    **kwargs: t.Any,
) -> th.Property[t.Any]:
    if with_defaults and name in MAPPING_DEFAULTS:
        kwargs["default"] = MAPPING_DEFAULTS[name]
    return th.Property(name, wrapped, **kwargs)


def mapping_properties(*, with_defaults: bool = True) -> list[th.Property[t.Any]]:
    """The settings that turn one row into one message; each may be overridden per stream."""

    def prop(name: str, wrapped: t.Any, **kwargs: t.Any) -> th.Property[t.Any]:
        return _mapping_property(name, wrapped, with_defaults=with_defaults, **kwargs)

    return [
        prop(
            "mode",
            th.StringType,
            allowed_values=list(MODES),
            title="Message kind",
            description=(
                "`pushed_message` POSTs to `/pushedMessages/` (shown to the client as sent by an "
                "agent or a group, or a random agent). `agent_message` POSTs to `/messages/` "
                "as a named agent (`agent_id`, or `agent_email` + `agent_name`)."
            ),
        ),
        prop(
            "client_id_property",
            th.StringType,
            title="Client ID column",
            description="Row property holding the Chatra client ID the message goes to.",
            examples=["client_id", "chatra_client_id"],
        ),
        prop(
            "text_property",
            th.StringType,
            title="Text column",
            description=(
                "Row property holding the message text, used when `text_template` is not set. "
                "Text must be 1 to 5000 characters; other rows are dead-lettered, never sent."
            ),
            examples=["text", "message"],
        ),
        prop(
            "text_template",
            th.StringType,
            title="Text template",
            description=(
                "Jinja2 template for the text, rendered in a sandbox with the row's properties "
                "as variables (and the whole row as `row`; date-time columns as datetimes, "
                "e.g. `{{ shipped_at.strftime('%d %b') }}`). Takes precedence over "
                "`text_property`. A null used anywhere but in a test (`default(...)`, "
                "`is none`, `if name`) makes the row invalid, as does a variable the row "
                "lacks: `{{ name | upper }}` with a null name is dead-lettered (code "
                "`template_null`), never sent as \"NONE\"; `{{ name | default('there') }}` "
                "says what to print instead. Each row may take 1 s of CPU time and make at "
                "most 5000 characters (strings and numbers the template builds at most 100000); "
                "a row past a limit is dead-lettered alone (`template_limit`). A template "
                "that does not compile stops the run before anything is sent. Under "
                "`stream_settings`, setting `text_property` without `text_template` turns a "
                "top-level template off for that stream."
            ),
            examples=["Hi {{ first_name }}, your order {{ order_id }} has shipped."],
        ),
        prop(
            "agent_id",
            th.StringType,
            title="Agent ID",
            description=(
                "Chatra agent who sends every message (both modes), unless `agent_id_property` "
                "gives one for the row."
            ),
        ),
        prop(
            "agent_id_property",
            th.StringType,
            title="Agent ID column",
            description="Row property holding the sending agent's ID; null means `agent_id`.",
        ),
        prop(
            "group_id",
            th.StringType,
            title="Group ID",
            description=(
                "Chatra agent group that sends every pushed message, unless `group_id_property` "
                "gives one for the row. Pushed messages only; not together with an agent."
            ),
        ),
        prop(
            "group_id_property",
            th.StringType,
            title="Group ID column",
            description="Row property holding the sending group's ID; null means `group_id`.",
        ),
        prop(
            "agent_email",
            th.StringType,
            title="Agent email",
            description="Agent messages only: the sending agent's email, given with `agent_name`.",
            examples=["support@example.com"],
        ),
        prop(
            "agent_name",
            th.StringType,
            title="Agent name",
            description="Agent messages only: the sending agent's name, with `agent_email`.",
            examples=["Daniela"],
        ),
        prop(
            "received_from",
            th.StringType,
            title="Received from",
            description=(
                "`receivedFrom` sent with every message, so webhooks and tap-chatra can tell "
                "this target's sends from real conversations. Empty to leave it out."
            ),
        ),
        prop(
            "dedupe_key_properties",
            th.ArrayType(th.StringType),
            title="Dedupe key columns",
            description=(
                "Row properties that identify one message: a key already sent is never sent "
                "again. Unset or empty: the stream's key properties; with none, a hash of the "
                "client ID and the text. Values that differ are different keys: numbers equal "
                'as numbers are one key (`7`, `7.0` and the string `"7"`), any other string '
                'is a key of its own (`"1.10"` is not `"1.1"`, `"2.0"` is not `2`, '
                '`"007"` is not `7`), date-times compare in UTC. Two rows of one run with one '
                "key but different messages: the first is handled, the second dead-lettered "
                "(`key_conflict`) with a WARNING naming both input lines."
            ),
            examples=[["order_id"], ["client_id", "campaign"]],
        ),
        prop(
            "sent_ids_path",
            th.StringType,
            title="Sent IDs file",
            description=(
                "File the Chatra IDs of sent messages are appended to, one per line. tap-chatra "
                "reads it as `pushed_message_ids_file` (or `message_ids_file` for agent "
                "messages) to load back what was sent. Unset: not written."
            ),
            examples=[".chatra-push/sent-ids.txt"],
        ),
    ]


def stream_settings_property() -> th.Property[t.Any]:
    """`stream_settings`: per-stream overrides of the mapping settings."""
    return th.Property(
        "stream_settings",
        th.ObjectType(
            additional_properties=th.ObjectType(
                *mapping_properties(with_defaults=False),
                additional_properties=False,
            ),
        ),
        title="Per-stream settings",
        description=(
            "Overrides of the mapping settings for single streams, keyed by stream name, for "
            "one target fed by several warehouse streams. Unlisted streams use the top-level "
            "settings."
        ),
        examples=[
            {
                "orders_shipped": {"text_template": "Order {{ order_id }} is on its way."},
                "vip_notes": {"mode": "agent_message", "agent_id": "bnRzp4CioKudG4aHm"},
            }
        ],
    )


def delivery_properties() -> list[th.Property[t.Any]]:
    """The settings that keep delivery safe: the ledger, the dead letters, dry runs, caps."""
    return [
        th.Property(
            "ledger_path",
            th.StringType,
            default=DEFAULT_LEDGER_PATH,
            title="Ledger file",
            description=(
                "SQLite file recording every key sent, pending, failed or unconfirmed, so no "
                "message is ever sent twice. Relative paths start in the working directory. "
                "Keep it between runs; on machines that do not keep files (CI runners, "
                "containers) use `ledger_url` instead."
            ),
        ),
        th.Property(
            "ledger_url",
            th.StringType,
            secret=True,
            title="PostgreSQL ledger",
            description=(
                "Keep the ledger in PostgreSQL instead of `ledger_path`, for runs on machines "
                "that do not keep files: `postgresql://user:password@host:5432/db`. The "
                "tables are created in the database's default schema on first use."
            ),
            examples=["postgresql://chatra_push@db.internal:5432/ops"],
        ),
        th.Property(
            "new_ledger_ok",
            th.BooleanType,
            default=False,
            title="Start a new ledger",
            description=(
                "Allow a new, empty ledger although earlier runs left a sent-ID, dead-letter "
                "or report file. Off: such a run stops before sending, since the old ledger "
                "was probably lost or moved and every row would go out again."
            ),
        ),
        th.Property(
            "ledger_wait_seconds",
            th.NumberType(minimum=0),
            default=30,
            title="Wait for the ledger",
            description=(
                "One run uses a ledger at a time: a second run waits this long for the first "
                "to finish, then stops without sending. SIGTERM or SIGINT ends the wait at once."
            ),
        ),
        th.Property(
            "dead_letter_path",
            th.StringType,
            default=DEFAULT_DEAD_LETTER_PATH,
            title="Dead-letter file",
            description=(
                "JSONL file receiving each invalid or rejected row with the reason (one object "
                "per line: stream, key, kind, code, reason, status, record, time; `code` names "
                "the reason for programs, e.g. `template_null`, `key_conflict`, `http_404`)."
            ),
        ),
        th.Property(
            "on_error",
            th.StringType,
            default="continue",
            allowed_values=list(ON_ERROR_CHOICES),
            title="On a bad row",
            description=(
                "`continue` dead-letters invalid or rejected rows and goes on; `fail` stops at "
                "the first one, after settling every row before it, with a non-zero exit."
            ),
        ),
        th.Property(
            "retry_failed",
            th.BooleanType,
            default=True,
            title="Retry rejected rows",
            description=(
                "Try rows Chatra rejected (400/403/404/422) again on a later run; no STATE is "
                "passed on after such a row, so an incremental tap reads it again."
            ),
        ),
        th.Property(
            "resend_unconfirmed",
            th.BooleanType,
            default=False,
            title="Resend unconfirmed",
            description=(
                "Send again keys whose earlier send was never confirmed (a crash mid-send, or "
                "a POST whose answer was lost). The client may then get the message twice; "
                "check Chatra first."
            ),
        ),
        th.Property(
            "max_unconfirmed_in_a_row",
            th.IntegerType(minimum=0),
            default=3,
            title="Unconfirmed sends in a row",
            description=(
                "Stop the run after this many POSTs in a row whose answer was lost, so that "
                "a network fault leaves a few rows to check in Chatra rather than every row; "
                "the rows after the stop go out on the next run. 0 never stops."
            ),
        ),
        th.Property(
            "resend_changed",
            th.BooleanType,
            default=False,
            title="Resend changed",
            description=(
                "Send a new message when a key already sent now renders a different message. "
                "Off: such rows count as duplicates."
            ),
        ),
        th.Property(
            "max_sends_per_run",
            th.IntegerType(minimum=0),
            default=0,
            title="Sends per run",
            description=(
                "Most messages POSTed in one run (rejected attempts count too); 0 for no cap. "
                "Rows past the cap are not sent and not recorded: they go out on a later run "
                "(no STATE is passed on after the first of them) and are reported as deferred."
            ),
        ),
        th.Property(
            "dry_run",
            th.BooleanType,
            default=False,
            title="Dry run",
            description=(
                "Render, validate and check every row against the ledger, write each would-be "
                "request to `preview_path` and log the summary. Sends nothing, emits no STATE, "
                "and writes neither the ledger nor the dead-letter or sent-ID files. Needs no "
                "API keys."
            ),
        ),
        th.Property(
            "preview_path",
            th.StringType,
            default=DEFAULT_PREVIEW_PATH,
            title="Preview file",
            description=(
                "Dry runs write here, replacing the file: one JSON object per row with the "
                "stream, key, action (send, duplicate, unconfirmed, invalid, deferred, "
                "not_retried) and the request it would make."
            ),
        ),
        th.Property(
            "report_path",
            th.StringType,
            title="Report file",
            description=(
                "If set, the end-of-run summary is also written here as JSON: per-stream "
                "counts and the keys left unconfirmed. A dry run writes its report here too, "
                "marked `dry_run: true`."
            ),
            examples=[".chatra-push/report.json"],
        ),
        th.Property(
            "preview_html_path",
            th.StringType,
            title="Preview page",
            description=(
                "Dry runs also write this HTML page, replacing it: every row as the client "
                "will see it (a chat bubble with the text and the sender), grouped by stream "
                "and client, with counts by action, the reason of each invalid row and a "
                "search box. One file with nothing to fetch; it holds the message texts, so "
                "it is readable by the owner only. Unset: `preview.html` beside `preview_path`."
            ),
            examples=[".chatra-push/preview.html"],
        ),
        th.Property(
            "report_html_path",
            th.StringType,
            title="Report page",
            description=(
                "If set, a real run writes the same page as `preview_html_path` here, "
                "replacing it: what was sent, duplicated, left unconfirmed, deferred or "
                "dead-lettered, with the reasons."
            ),
            examples=[".chatra-push/report.html"],
        ),
    ]
