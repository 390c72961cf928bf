"""Item 10: requests a run makes when many clients are known and a few changed."""

from __future__ import annotations

import typing as t

import requests

from bench.harness import Sandbox, read_singer, run_measured, write_json, write_lines
from bench.report import Figure

if t.TYPE_CHECKING:
    from pathlib import Path

    from bench.context import Context
    from bench.harness import RunResult

ITEM10 = "10 client refresh"
#: Requests a run may spend on clients, beyond one per new message.
CLIENT_BUDGET = 60


def client_refresh(ctx: Context) -> None:
    """Fetch every client once, then run with a few new messages whose clients changed."""
    sizes = ctx.sizes
    known, changed = sizes.refresh_clients, sizes.refresh_changed
    folder = ctx.folder("client-refresh")
    # Four messages a changed client on average, so that `changed` distinct clients are found.
    with Sandbox(folder / "sandbox", clients=known, messages=4 * changed) as sandbox:
        clients = sandbox.ids("clients")
        messages = _messages_of_distinct_clients(sandbox, changed)
        config = {
            "api_key_pair": sandbox.key_pair,
            "api_url": sandbox.api_url,
            "requests_per_minute": 0,
            "client_ids_file": str(write_lines(folder / "clients.txt", clients)),
        }
        first = _run(ctx, folder / "first", sandbox, config, state=None)
        state = read_singer(first[0].stdout).last_state
        config["message_ids_file"] = str(write_lines(folder / "messages.txt", messages))
        result, by_resource = _run(ctx, folder / "changed", sandbox, config, state=state)
        every_run = _run(
            ctx, folder / "every-run", sandbox, {**config, "client_refresh_hours": 0}, state=state
        )[1]
    total = sum(by_resource.values())
    ctx.report.add(
        Figure(
            ITEM10, f"requests in a run: {known:,} known clients, {changed} named by new "
            f"messages", total, "", "<=", CLIENT_BUDGET + by_resource["messages"], digits=0,
        ),
        Figure(ITEM10, "same, client_refresh_hours 0 (every client every run)",
               sum(every_run.values()), "", digits=0),
    )  # fmt: skip
    ctx.report.detail(
        ITEM10,
        f"first run: {sum(first[1].values()):,} requests; run with {len(messages)} new messages: "
        f"{by_resource['messages']} message and {by_resource['clients']} client requests in "
        f"{result.wall:.2f} s; with client_refresh_hours 0: {every_run['clients']:,} client "
        "requests",
    )


def _messages_of_distinct_clients(sandbox: Sandbox, wanted: int) -> list[str]:
    """`wanted` message IDs whose clients all differ (asked of the API, then the log reset)."""
    found: dict[str, str] = {}
    with requests.Session() as session:
        session.headers["Authorization"] = f"Chatra.Simple {sandbox.key_pair}"
        for message_id in sandbox.ids("messages"):
            answer = session.get(f"{sandbox.api_url}/messages/{message_id}", timeout=30)
            answer.raise_for_status()
            found.setdefault(str(answer.json()["clientId"]), message_id)
            if len(found) == wanted:
                break
    sandbox.reset_log()
    return list(found.values())


def _run(
    ctx: Context,
    folder: Path,
    sandbox: Sandbox,
    config: dict[str, t.Any],
    *,
    state: dict[str, t.Any] | None,
) -> tuple[RunResult, dict[str, int]]:
    """One tap run from `state`; the requests the sandbox saw, by resource."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [ctx.tap(), "--config", str(write_json(folder / "tap.json", config))]
    if state is not None:
        command += ["--state", str(write_json(folder / "state.json", state))]
    sandbox.reset_log()
    result = run_measured(command, stdout=folder / "tap.out", stderr=folder / "tap.err")
    result.check(f"tap-chatra ({folder.name})")
    counts = {"messages": 0, "clients": 0}
    for entry in sandbox.requests_log():
        counts[entry["resource"]] = counts.get(entry["resource"], 0) + 1
    return result, counts
