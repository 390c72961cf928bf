"""Prometheus metrics of one app: a registry of its own, built when the app is."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

#: Event names used as label values; any other name counts as `other`, so a sender cannot
#: create label values at will.
KNOWN_EVENTS = frozenset({"chatStarted", "chatFragment", "chatTranscript"})
#: Route labels, from the paths the app serves.
ROUTES = {"/events": "events", "/healthz": "healthz", "/metrics": "metrics"}
INGEST_PREFIX = "/chatra/"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def route_of(path: str) -> str:
    """The route label of a request path: `ingest`, `events`, …, or `other`."""
    if path.startswith(INGEST_PREFIX):
        return "ingest"
    return ROUTES.get(path, "other")


class InboxMetrics:
    """Events stored, duplicates, rejections, events repaired or skipped when read, latency."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stored = Counter(
            "chatra_webhooks_events_stored",
            "Webhook events committed to the store, by event name.",
            ["event_name"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "chatra_webhooks_duplicates",
            "Deliveries of a body that was stored already (answered 200, stored once).",
            registry=self.registry,
        )
        self.rejected = Counter(
            "chatra_webhooks_rejected",
            "Requests refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.read_repaired = Counter(
            "chatra_webhooks_read_repaired",
            "Stored events served repaired, by repair (a number out of range, a lone "
            "surrogate): rows stored before the door refused them, or edited by hand.",
            ["repair"],
            registry=self.registry,
        )
        self.read_skipped = Counter(
            "chatra_webhooks_read_skipped",
            "Stored events not served because they are no JSON object, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "chatra_webhooks_request_duration_seconds",
            "Time from a request's arrival to its answer, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

        # Each label's child looked up once, not on every request.
        self._stored_by_name = {
            name: self.stored.labels(event_name=name) for name in (*KNOWN_EVENTS, "other")
        }
        self._latency_by_route = {
            route: self.latency.labels(route=route)
            for route in ("ingest", *ROUTES.values(), "other")
        }

    def count_stored(self, event_name: str | None) -> None:
        """Count an event committed for the first time."""
        label = event_name if event_name in KNOWN_EVENTS else "other"
        self._stored_by_name[label].inc()

    def observe_latency(self, path: str, seconds: float) -> None:
        """Record how long a request to `path` took."""
        self._latency_by_route[route_of(path)].observe(seconds)

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
