"""Webhooks the sandbox sends, as Chatra does: JSON bodies POSTed to one URL, in order.

A single background thread delivers the events one at a time, in the order they were raised,
so an inbox sees a chat's fragments before its transcript. A failed delivery (no answer, or
not a 2xx) is retried a few times with a growing pause, then given up and counted. Nothing
here logs a body: bodies hold chat text.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatra_sandbox.conversations import Conversation, api_message_payload, new_conversation
from chatra_sandbox.history import TrafficShape, history_conversations

if TYPE_CHECKING:
    from chatra_sandbox.data import Record, SandboxStore

logger = logging.getLogger("chatra_sandbox.webhooks")

_RETRY_PAUSES = (0.2, 0.5, 1.0, 2.0, 4.0)
_TIMEOUT = 10.0


@dataclass(frozen=True)
class Delivery:
    """The outcome of one webhook: event name, final HTTP status (None: no answer), attempts."""

    event_name: str
    status: int | None
    attempts: int

    @property
    def ok(self) -> bool:
        """Whether the receiver accepted the event."""
        return self.status is not None and 200 <= self.status < 300


class WebhookSender:
    """POSTs webhook bodies to ``url`` from one background thread, in the order given.

    Args:
        url: Where every event goes (an inbox's ingest URL, token included).
        pause: Seconds to wait after each delivery, to spread a simulation out in time.
    """

    def __init__(self, url: str, *, pause: float = 0.0) -> None:
        self.url = url
        self._pause = pause
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._deliveries: list[Delivery] = []
        self._thread = threading.Thread(target=self._run, name="chatra-sandbox-webhooks")
        self._thread.daemon = True
        self._thread.start()

    def send(self, payload: dict[str, Any]) -> None:
        """Queue one event for delivery."""
        self._queue.put(payload)

    def wait(self) -> None:
        """Block until every queued event has been delivered or given up."""
        self._queue.join()

    def deliveries(self) -> list[Delivery]:
        """Every finished delivery so far, oldest first."""
        return list(self._deliveries)

    def close(self) -> None:
        """Stop after the events already queued."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(_TIMEOUT)

    def _run(self) -> None:
        while (payload := self._queue.get()) is not None:
            try:
                self._deliveries.append(self._deliver(payload))
                if self._pause:
                    time.sleep(self._pause)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _deliver(self, payload: dict[str, Any]) -> Delivery:
        event_name = str(payload.get("eventName"))
        body = json.dumps(payload, ensure_ascii=False).encode()
        status: int | None = None
        for attempt, pause in enumerate((*_RETRY_PAUSES, None), start=1):
            status = self._post(body)
            if status is not None and 200 <= status < 300:
                return Delivery(event_name, status, attempt)
            if pause is not None:
                time.sleep(pause)
        logger.warning(
            "webhook %s not delivered after %d attempts (last status %s)",
            event_name,
            len(_RETRY_PAUSES) + 1,
            status,
        )
        return Delivery(event_name, status, len(_RETRY_PAUSES) + 1)

    def _post(self, body: bytes) -> int | None:
        request = urllib.request.Request(  # noqa: S310 - the URL is the user's own setting
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except (OSError, ValueError):
            return None


def simulate_chats(
    store: SandboxStore, sender: WebhookSender, count: int, *, first_index: int = 0
) -> list[Conversation]:
    """Run ``count`` conversations: store each one, then queue its events in order.

    Returns:
        The conversations, once every event has been delivered or given up.
    """
    indexes = range(first_index, first_index + count)
    conversations = [new_conversation(store, index) for index in indexes]
    return send_conversations(store, sender, conversations)


def simulate_history(
    store: SandboxStore, sender: WebhookSender, shape: TrafficShape
) -> list[Conversation]:
    """Make the chats of a history (see ``chatra_sandbox.history``), then queue their events.

    Returns:
        The conversations, oldest first, once every event has been delivered or given up.
    """
    return send_conversations(store, sender, history_conversations(store, shape))


def send_conversations(
    store: SandboxStore, sender: WebhookSender, conversations: list[Conversation]
) -> list[Conversation]:
    """Queue every event of each conversation in turn; return them once all are out."""
    for conversation in conversations:
        for payload in conversation.events(store.agents):
            sender.send(payload)
    sender.wait()
    return conversations


def raise_api_message(store: SandboxStore, sender: WebhookSender, message: Record) -> None:
    """Queue the ``chatFragment`` that a message sent through the API raises."""
    payload = api_message_payload(store, message)
    if payload is not None:
        sender.send(payload)
