"""What the report shows, read from the marts: every number on the page comes from here."""

from __future__ import annotations

import bisect
import datetime as dt
import statistics
import typing as t
from dataclasses import dataclass

from chatra_analytics.warehouse import check_marts, check_schema

if t.TYPE_CHECKING:
    from chatra_analytics.warehouse import Warehouse

#: First response time buckets: (label, lower bound in seconds, included; upper, excluded).
RESPONSE_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("< 30 s", 0, 30),
    ("30 s to 1 min", 30, 60),
    ("1-2 min", 60, 120),
    ("2-5 min", 120, 300),
    ("5-15 min", 300, 900),
    ("15-60 min", 900, 3600),
    ("> 1 h", 3600, float("inf")),
)


@dataclass(frozen=True)
class DayChats:
    """Chats started on one UTC day, by status."""

    day: dt.date
    answered: int
    unanswered: int
    agent_only: int

    @property
    def total(self) -> int:
        """Every chat started that day."""
        return self.answered + self.unanswered + self.agent_only


@dataclass(frozen=True)
class ResponseBucket:
    """How many chats got their first response within one range of times."""

    label: str
    low: float
    high: float
    chats: int


@dataclass(frozen=True)
class AgentLoad:
    """One agent's totals over the report's period (sums of agent_daily)."""

    agent_id: str
    agent_name: str
    chats: int
    messages: int
    first_responses: int


@dataclass(frozen=True)
class MissedChat:
    """One row of missed_chats."""

    chat_key: str
    client_name: str
    started_at: dt.datetime
    waited_minutes: float
    last_client_text: str


@dataclass(frozen=True)
class ReportFigures:
    """Everything on the page."""

    days: list[DayChats]
    buckets: list[ResponseBucket]
    agents: list[AgentLoad]
    missed: list[MissedChat]
    missed_total: int
    median_first_response_seconds: float | None
    as_of: dt.datetime | None

    @property
    def chats(self) -> int:
        """Chats in the period."""
        return sum(day.total for day in self.days)

    @property
    def answered(self) -> int:
        """Answered chats in the period."""
        return sum(day.answered for day in self.days)


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _every_day(counts: dict[dt.date, dict[str, int]]) -> list[DayChats]:
    """One entry per day from the first to the last, days without chats included."""
    if not counts:
        return []
    first, last = min(counts), max(counts)
    days = []
    for offset in range((last - first).days + 1):
        day = first + dt.timedelta(days=offset)
        by_status = counts.get(day, {})
        days.append(
            DayChats(
                day,
                by_status.get("answered", 0),
                by_status.get("unanswered", 0),
                by_status.get("agent_only", 0),
            )
        )
    return days


def bucket_counts(seconds: list[float]) -> list[ResponseBucket]:
    """Count first response times per bucket of RESPONSE_BUCKETS."""
    lows = [low for _, low, _ in RESPONSE_BUCKETS]
    counts = [0] * len(RESPONSE_BUCKETS)
    for value in seconds:
        counts[max(0, bisect.bisect_right(lows, value) - 1)] += 1
    return [
        ResponseBucket(label, low, high, count)
        for (label, low, high), count in zip(RESPONSE_BUCKETS, counts, strict=True)
    ]


def read_figures(
    warehouse: Warehouse, schema: str = "analytics", missed_limit: int = 200
) -> ReportFigures:
    """Read the report's figures from the marts in `schema`.

    Raises:
        ReportError: If the schema is not a plain name or a mart is missing.
    """
    schema = check_schema(schema)
    check_marts(warehouse, schema)
    counts: dict[dt.date, dict[str, int]] = {}
    for started_on, status, chats in warehouse.rows(
        f"select started_on, status, count(*) from {schema}.chats group by started_on, status"  # noqa: S608 - a checked identifier
    ):
        counts.setdefault(_as_date(started_on), {})[str(status)] = int(chats)
    seconds = [
        float(row[0])
        for row in warehouse.rows(
            f"select first_response_seconds from {schema}.chats "  # noqa: S608
            "where first_response_seconds is not null"
        )
    ]
    agents = [
        AgentLoad(str(agent_id), str(name or agent_id), int(chats), int(messages), int(firsts))
        for agent_id, name, chats, messages, firsts in warehouse.rows(
            f"select agent_id, max(agent_name), sum(chats), sum(messages), sum(first_responses) "  # noqa: S608
            f"from {schema}.agent_daily group by agent_id order by 3 desc, 1"
        )
    ]
    missed = [
        MissedChat(str(key), str(name), started, float(waited), str(text or ""))
        for key, name, started, waited, text in warehouse.rows(
            f"select chat_key, client_name, started_at, waited_minutes, last_client_text "  # noqa: S608
            f"from {schema}.missed_chats order by waited_minutes desc, chat_key "
            f"limit {int(missed_limit)}"
        )
    ]
    [(missed_total, as_of)] = warehouse.rows(
        f"select count(*), max(as_of) from {schema}.missed_chats"  # noqa: S608
    )
    return ReportFigures(
        days=_every_day(counts),
        buckets=bucket_counts(seconds),
        agents=agents,
        missed=missed,
        missed_total=int(missed_total),
        median_first_response_seconds=statistics.median(seconds) if seconds else None,
        as_of=as_of,
    )
