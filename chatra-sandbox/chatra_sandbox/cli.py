"""``chatra-sandbox``: serve the sandbox until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from chatra_sandbox.auth import DEFAULT_PUBLIC_KEY, DEFAULT_SECRET_KEY
from chatra_sandbox.server import SandboxServer

if TYPE_CHECKING:
    from collections.abc import Sequence


def _fail_id(value: str) -> tuple[str, int]:
    record_id, sep, count = value.rpartition("=")
    if not sep or not record_id or not count.isdigit():
        msg = f"expected ID=N, got {value!r}"
        raise argparse.ArgumentTypeError(msg)
    return record_id, int(count)


def _utc_time(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        msg = f"expected an ISO 8601 time such as 2025-03-08T18:00:00Z, got {value!r}"
        raise argparse.ArgumentTypeError(msg) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="chatra-sandbox",
        description="Serve a local emulator of the Chatra REST API on 127.0.0.1.",
    )
    add = parser.add_argument
    add("--port", type=int, default=8765, help="port to listen on; 0 picks a free one")
    add("--seed", type=int, default=42, help="seed of the generated data")
    add("--clients", type=int, default=20, help="number of seeded clients")
    add("--messages", type=int, default=60, help="number of seeded messages")
    add("--pushed-messages", type=int, default=15, help="number of seeded pushed messages")
    add("--public-key", default=DEFAULT_PUBLIC_KEY, help="the account's public key")
    add("--secret-key", default=DEFAULT_SECRET_KEY, help="the account's secret key")
    add("--requests-per-minute", type=float, default=60, help="rate limit; 0 = unlimited")
    add(
        "--rate-limit-mode",
        choices=["gcra", "sliding-window"],
        default="gcra",
        help="gcra: even spacing, 2 requests of tolerance; sliding-window: strict count",
    )
    add(
        "--rate-limit-window",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="length of the sliding window",
    )
    add("--ids-dir", help="write messages.txt, pushed_messages.txt, clients.txt here")
    add("--log-file", help="append every API request to this file as JSON lines")
    hooks = parser.add_argument_group("webhooks")
    hadd = hooks.add_argument
    hadd("--webhook-url", help="POST webhooks here (simulated chats, messages sent via the API)")
    hadd("--simulate-chats", type=int, default=0, metavar="N", help="run N simulated chats")
    hadd("--webhook-pause", type=float, default=0, help="seconds between two webhooks")
    hadd(
        "--history-days",
        type=int,
        default=0,
        metavar="D",
        help="play out D days of realistic chats (agents, delays, unanswered chats)",
    )
    hadd("--chats-per-day", type=int, default=25, help="chats on an average day of the history")
    hadd(
        "--history-end",
        type=_utc_time,
        metavar="TIME",
        help="end of the history, an ISO 8601 time (UTC unless it says); default: now",
    )
    faults = parser.add_argument_group("fault injection")
    fadd = faults.add_argument
    fadd("--latency-ms", type=float, default=0, help="latency added to every API request")
    fadd("--latency-spike-rate", type=float, default=0, help="share of requests with a spike")
    fadd("--latency-spike-ms", type=float, default=0, help="extra latency of a spike")
    fadd("--error-rate", type=float, default=0, help="share of requests answered 500/502/503")
    fadd("--html-error-share", type=float, default=0, help="share of those errors as HTML")
    fadd("--reset-rate", type=float, default=0, help="share of connections dropped unanswered")
    fadd(
        "--post-reset-after-commit-rate",
        type=float,
        default=0,
        help="share of POSTs committed but whose connection is then dropped",
    )
    fadd(
        "--post-error-after-commit-rate",
        type=float,
        default=0,
        help="share of POSTs committed but then answered 502/504, as by a gateway",
    )
    fadd("--burst-429", metavar="EVERY:COUNT", help="after EVERY requests, COUNT answers 429")
    fadd("--no-retry-after", action="store_true", help="send 429 without Retry-After")
    fadd(
        "--fail-id",
        type=_fail_id,
        action="append",
        default=[],
        metavar="ID=N",
        help="answer the first N requests for ID with 503 (repeatable)",
    )
    fadd("--fault-seed", type=int, default=0, help="seed of the fault decisions")
    return parser


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "seed": args.seed,
        "clients": args.clients,
        "messages": args.messages,
        "pushed_messages": args.pushed_messages,
        "public_key": args.public_key,
        "secret_key": args.secret_key,
        "port": args.port,
        "log_file": args.log_file,
        "webhook_url": args.webhook_url,
        "webhook_pause": args.webhook_pause,
        "requests_per_minute": args.requests_per_minute,
        "rate_limit_mode": args.rate_limit_mode.replace("-", "_"),
        "rate_limit_window": args.rate_limit_window,
        "latency_ms": args.latency_ms,
        "latency_spike_rate": args.latency_spike_rate,
        "latency_spike_ms": args.latency_spike_ms,
        "error_rate": args.error_rate,
        "html_error_share": args.html_error_share,
        "reset_rate": args.reset_rate,
        "post_reset_after_commit_rate": args.post_reset_after_commit_rate,
        "post_error_after_commit_rate": args.post_error_after_commit_rate,
        "burst_429": args.burst_429,
        "retry_after": not args.no_retry_after,
        "fail_ids": dict(args.fail_id),
        "fault_seed": args.fault_seed,
    }


def _simulate(server: SandboxServer, args: argparse.Namespace) -> None:
    conversations = []
    if args.history_days:
        conversations += server.simulate_history(
            args.history_days, args.chats_per_day, end=args.history_end
        )
    if args.simulate_chats:
        conversations += server.simulate_chats(args.simulate_chats)
    deliveries = server.webhook_deliveries()
    failed = sum(not delivery.ok for delivery in deliveries)
    messages = sum(len(conversation.messages) for conversation in conversations)
    print(
        f"chatra-sandbox simulated {len(conversations)} chats ({messages} messages): "
        f"{len(deliveries) - failed} webhooks delivered, {failed} failed",
        file=sys.stderr,
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until interrupted.

    Returns:
        The exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.simulate_chats and not args.webhook_url:
        parser.error("--simulate-chats needs --webhook-url")
    if args.history_days and not args.webhook_url:
        parser.error("--history-days needs --webhook-url")
    if args.history_days < 0 or args.chats_per_day < 1:
        parser.error("--history-days must be 0 or more and --chats-per-day 1 or more")
    try:
        server = SandboxServer(**_options(args))
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server.start()
    except RuntimeError as exc:
        print(f"chatra-sandbox: {exc}", file=sys.stderr)
        return 1
    try:
        if args.ids_dir:
            paths = server.write_id_files(args.ids_dir)
            print(
                f"chatra-sandbox wrote IDs to {', '.join(map(str, paths.values()))}",
                file=sys.stderr,
            )
        print(f"chatra-sandbox listening on {server.url}", flush=True)
        if args.simulate_chats or args.history_days:
            threading.Thread(target=_simulate, args=(server, args), daemon=True).start()
        # A timed wait keeps the main thread responsive to signals.
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
