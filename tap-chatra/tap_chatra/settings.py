"""The tap's own settings; the connection settings come from chatra_client."""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

_ID_FILE_HELP = (
    "Path of a file of {what} IDs: plain text with one ID per line (blank lines and lines "
    "starting with # are ignored), a .csv file with an `id` column, or a .jsonl file with an "
    "`id` key per line. Malformed IDs are reported with their line and skipped."
)


def _id_settings(setting: str, what: str) -> list[th.Property[t.Any]]:
    return [
        th.Property(
            setting,
            th.ArrayType(th.StringType),
            title=f"{what.capitalize()} IDs",
            description=f"{what.capitalize()} IDs to fetch.",
        ),
        th.Property(
            f"{setting}_file",
            th.StringType,
            title=f"{what.capitalize()} ID file",
            description=_ID_FILE_HELP.format(what=what),
            examples=[f"{setting}.txt", f"{setting}.csv", f"{setting}.jsonl"],
        ),
    ]


#: Client keys that change on every visit; a change in them alone does not re-emit a client.
DEFAULT_FINGERPRINT_IGNORE = ("lastVisitAt", "lastVisitPages")

TAP_SETTINGS = th.PropertiesList(
    *_id_settings("message_ids", "message"),
    *_id_settings("pushed_message_ids", "pushed message"),
    *_id_settings("client_ids", "client"),
    th.Property(
        "webhook_inbox_url",
        th.StringType,
        title="Webhook inbox URL",
        description=(
            "Base URL of a chatra-webhooks inbox. The streams webhook_events and "
            "chat_messages read the events it received since the last run, and each event's "
            "client (and any message ID it carries) is fetched by the REST streams in the "
            "same run. Use this or `webhook_events_file`."
        ),
        examples=["https://hooks.example.com", "http://127.0.0.1:8780"],
    ),
    th.Property(
        "webhook_inbox_token",
        th.StringType,
        secret=True,
        title="Webhook inbox read token",
        description=(
            "The inbox's read token (its CHATRA_WEBHOOKS_READ_TOKEN), sent as a Bearer token."
        ),
    ),
    th.Property(
        "webhook_events_file",
        th.StringType,
        title="Webhook events file",
        description=(
            "Path of a JSONL file of Chatra webhook payloads, one per line (as "
            "`chatra-webhooks export` writes them). Feeds webhook_events and chat_messages "
            "like the inbox: a file that only grows is read on from where the last run "
            "stopped; a replaced or truncated one is read from the start, with a warning. "
            "Each event contributes its `client.id` to clients, and the `id` of any message "
            "that carries one to messages (or pushed_messages when it has `isPushed: true`)."
        ),
    ),
    th.Property(
        "fetch_message_clients",
        th.BooleanType,
        default=True,
        title="Fetch the clients of messages",
        description=(
            "Also fetch the client of every message and pushed message fetched, once per run, "
            "so the clients stream fills in without its own ID list."
        ),
    ),
    th.Property(
        "client_refresh_hours",
        th.NumberType,
        default=24,
        minimum=0,
        title="Refresh unchanged clients after (hours)",
        description=(
            "A known client is fetched again when a webhook event or a newly fetched message "
            "names it, and otherwise refreshed every this many hours, each client at its own "
            "time of that window (from a hash of its ID), so a run's requests follow what "
            "changed, not how many clients there are, and refreshes spread evenly over the "
            "hours: a client's first refresh comes between half and one and a half windows "
            "after its first fetch. 0 fetches every known client on every run."
        ),
        examples=[24, 168, 0],
    ),
    th.Property(
        "client_fingerprint_ignore",
        th.ArrayType(th.StringType),
        default=list(DEFAULT_FINGERPRINT_IGNORE),
        title="Client keys that are not a change",
        description=(
            "Top-level client keys left out when deciding whether a client changed since it "
            "was last emitted, so that a new visit alone does not re-emit every client. A "
            "client that changed otherwise is emitted with these keys' current values. Empty "
            "to count every key."
        ),
        examples=[list(DEFAULT_FINGERPRINT_IGNORE), []],
    ),
    th.Property(
        "missing_retry_hours",
        th.NumberType,
        default=24,
        minimum=0,
        title="Retry missing IDs after (hours)",
        description=(
            "An ID that answered 404 is tried again only this many hours later. An ID set "
            "aside as failing is tried again after 10 minutes, then after twice as long on "
            "each failed run, up to this many hours."
        ),
    ),
    th.Property(
        "state_flush_seconds",
        th.NumberType,
        default=10,
        exclusiveMinimum=0,
        title="Shortest STATE interval (seconds)",
        description=(
            "STATE messages are at least this far apart while a stream runs (and one follows "
            "the end of each stream that changed the state: a run that changes nothing writes "
            "none); a killed run resumes from the last one. While a stream "
            "runs, its STATE holds its state as the run started plus a cursor (about 150 "
            "bytes) saying how far the run got, not every ID fetched so far; the STATE after "
            "the stream's end holds them all. As the STATE grows the interval grows too, see "
            "state_bytes_per_hour."
        ),
    ),
    th.Property(
        "state_bytes_per_hour",
        th.IntegerType,
        default=5_000_000,
        minimum=0,
        title="STATE bytes per hour",
        description=(
            "Meltano stores every STATE message whole, and each holds the entry of every ID "
            "done before the running stream started (about 20 bytes an ID). The interval "
            "between them grows with their size so that about this many bytes are written an "
            "hour, from state_flush_seconds up to state_max_flush_seconds, which wins: more "
            "bytes an hour mean less work lost to a kill, fewer mean less written to the state "
            "backend. 0 keeps state_flush_seconds."
        ),
        examples=[5_000_000, 50_000_000],
    ),
    th.Property(
        "state_max_flush_seconds",
        th.NumberType,
        default=300,
        exclusiveMinimum=0,
        title="Longest STATE interval (seconds)",
        description=(
            "STATE messages are never further apart than this while a stream runs, whatever "
            "their size: a killed run fetches again at most this much work, plus the requests "
            "in flight and the IDs that answered 404 or failed since the stream started. "
            "Longer writes fewer bytes when the state a run starts from is large."
        ),
    ),
    th.Property(
        "max_concurrency",
        th.IntegerType,
        default=4,
        minimum=1,
        maximum=32,
        title="Requests in flight",
        description=(
            "How many requests may be in flight at once. Every attempt still waits for its "
            "turn under requests_per_minute; a few in flight keep that pace despite latency."
        ),
    ),
)
