"""The sandbox's seeded, deterministic record store.

Records are generated lazily: the store keeps only the ordered IDs of every stream and builds a
record the first time it is read, so a store of hundreds of thousands of records starts in a
few seconds and holds little more than its IDs. Reads and writes through the mappings behave
like plain dicts of ``id -> record``.

Records are replaced, never mutated in place, so a record handed to another thread (say, one
serialising a response) never changes under it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

from chatra_sandbox.generate import (
    SPECIAL_CLIENT_IDS,
    UNDOCUMENTED_KEY,
    Agent,
    has_undocumented_key,
    make_agents,
    make_client,
    make_message,
    meteor_id,
    plain_client_id,
)

Record = dict[str, Any]

#: Stream names (as used by the tap and in ID files) and the API resource each maps to.
STREAM_RESOURCES = {
    "messages": "messages",
    "pushed_messages": "pushedMessages",
    "clients": "clients",
}
_RESOURCE_STREAMS = {resource: stream for stream, resource in STREAM_RESOURCES.items()}

# Index base for clients added after seeding, far beyond any seeded index.
_ADDED_CLIENT_BASE = 1_000_000_000


def stream_name(name: str) -> str:
    """Return the stream name for a stream or resource name (``pushedMessages`` too).

    Raises:
        ValueError: If the name is neither.
    """
    if name in STREAM_RESOURCES:
        return name
    if name in _RESOURCE_STREAMS:
        return _RESOURCE_STREAMS[name]
    msg = f"Unknown stream {name!r}; expected one of {sorted(STREAM_RESOURCES)}."
    raise ValueError(msg)


class RecordMap(MutableMapping[str, Record]):
    """An insertion-ordered ``id -> record`` mapping whose seeded records are built on demand."""

    def __init__(self, ids: list[str], build: Callable[[int, str], Record]) -> None:
        # Seeded IDs map to their index (used to build the record); added IDs map to None.
        self._index: dict[str, int | None] = dict(zip(ids, range(len(ids)), strict=True))
        self._records: dict[str, Record] = {}
        self._build = build

    def __getitem__(self, key: str) -> Record:
        record = self._records.get(key)
        if record is not None:
            return record
        index = self._index[key]
        if index is None:
            raise KeyError(key)
        record = self._build(index, key)
        self._records[key] = record
        return record

    def __setitem__(self, key: str, value: Record) -> None:
        self._index.setdefault(key, None)
        self._records[key] = value

    def __delitem__(self, key: str) -> None:
        del self._index[key]
        self._records.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._index))

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def seeded_ids(self, predicate: Callable[[int], bool]) -> list[str]:
        """Return the seeded IDs still present whose index satisfies ``predicate``."""
        return [
            key
            for key, index in list(self._index.items())
            if index is not None and predicate(index)
        ]


class SandboxStore:
    """Seeded clients, messages and pushed messages, plus the account's agents.

    Args:
        seed: Seed for every generated value; the same seed gives the same data.
        clients: Number of seeded clients.
        messages: Number of seeded (client and agent) messages.
        pushed_messages: Number of seeded pushed messages.

    Raises:
        ValueError: If a count is negative, or messages are asked for without clients.
    """

    def __init__(
        self, *, seed: int = 42, clients: int = 20, messages: int = 60, pushed_messages: int = 15
    ) -> None:
        if min(clients, messages, pushed_messages) < 0:
            msg = "Record counts must not be negative."
            raise ValueError(msg)
        if clients == 0 and messages + pushed_messages > 0:
            msg = "Messages need at least one client to belong to."
            raise ValueError(msg)
        self.seed = seed
        self.lock = threading.RLock()
        self.agents: dict[str, Agent] = {agent.id: agent for agent in make_agents(seed)}
        self._created_rng = random.Random(f"{seed}:created")
        self._added_clients = 0

        client_ids = _seed_client_ids(seed, clients)
        message_ids = _seed_message_ids(seed, messages + pushed_messages)
        agents = tuple(self.agents.values())
        self.clients = RecordMap(client_ids, lambda i, cid: make_client(seed, i, cid))
        self.messages = RecordMap(
            message_ids[:messages],
            lambda i, mid: make_message(
                seed, i, mid, pushed=False, client_ids=client_ids, agents=agents
            ),
        )
        self.pushed_messages = RecordMap(
            message_ids[messages:],
            lambda i, mid: make_message(
                seed, i, mid, pushed=True, client_ids=client_ids, agents=agents
            ),
        )

    def records(self, stream: str) -> RecordMap:
        """Return the mapping of one stream (stream or resource name)."""
        name = stream_name(stream)
        if name == "messages":
            return self.messages
        if name == "pushed_messages":
            return self.pushed_messages
        return self.clients

    def ids(self, stream: str) -> list[str]:
        """Return the IDs currently in a stream, seeded ones first in seed order."""
        return list(self.records(stream))

    def ids_with_undocumented_key(self, stream: str) -> list[str]:
        """Return the seeded IDs whose record carries the undocumented ``customFlag`` key."""
        return self.records(stream).seeded_ids(has_undocumented_key)

    @property
    def undocumented_key(self) -> str:
        """The top-level key no documentation mentions (on a few records of every stream)."""
        return UNDOCUMENTED_KEY

    def special_client_ids(self) -> list[str]:
        """Return the seeded client IDs that hold characters needing URL escaping."""
        return [cid for cid in SPECIAL_CLIENT_IDS if cid in self.clients]

    def update_client(self, client_id: str, **fields: Any) -> Record:
        """Change fields of a client (any top-level key), e.g. to test change detection.

        Returns:
            The updated client record.

        Raises:
            KeyError: If there is no such client.
        """
        with self.lock:
            record = {**self.clients[client_id], **fields}
            self.clients[client_id] = record
            return record

    def add_client(self, client_id: str, **fields: Any) -> Record:
        """Add a client with generated fields, overridden by ``fields``.

        Returns:
            The new client record.

        Raises:
            ValueError: If the ID is blank or already taken.
        """
        if not client_id.strip() or client_id in self.clients:
            msg = f"Client ID {client_id!r} is blank or already taken."
            raise ValueError(msg)
        with self.lock:
            self._added_clients += 1
            record = make_client(self.seed, _ADDED_CLIENT_BASE + self._added_clients, client_id)
            record.pop(UNDOCUMENTED_KEY, None)
            record.update(fields)
            self.clients[client_id] = record
            return record

    def new_message_id(self) -> str:
        """Return a fresh message ID, the same sequence for the same seed."""
        with self.lock:
            while True:
                message_id = meteor_id(self._created_rng)
                if message_id not in self.messages and message_id not in self.pushed_messages:
                    return message_id

    def random_agent(self) -> Agent:
        """Return a seeded-random agent (pushed messages sent without an agent)."""
        with self.lock:
            return self._created_rng.choice(list(self.agents.values()))

    def agent_for_email(self, email: str, name: str) -> Agent:
        """Return the agent with this email, registering a new one if none has it."""
        with self.lock:
            for agent in self.agents.values():
                if agent.email == email:
                    return agent
            agent = Agent(meteor_id(self._created_rng), name, email)
            self.agents[agent.id] = agent
            return agent

    def write_id_files(self, directory: str | Path) -> dict[str, Path]:
        """Write one file of IDs per stream (``messages.txt``, ...), one ID per line.

        Returns:
            The path written for each stream name.
        """
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for stream in STREAM_RESOURCES:
            path = folder / f"{stream}.txt"
            ids = self.ids(stream)
            path.write_text("".join(f"{record_id}\n" for record_id in ids), encoding="utf-8")
            paths[stream] = path
        return paths


def _seed_client_ids(seed: int, count: int) -> list[str]:
    # Every third client from the second one on gets one of the special IDs, until they run out.
    rng = random.Random(f"{seed}:client-ids")
    special = list(SPECIAL_CLIENT_IDS)
    ids: list[str] = []
    seen: set[str] = set()
    for index in range(count):
        if index % 3 == 1 and special:
            client_id = special.pop(0)
        else:
            client_id = plain_client_id(rng)
            while client_id in seen:
                client_id = plain_client_id(rng)
        seen.add(client_id)
        ids.append(client_id)
    return ids


def _seed_message_ids(seed: int, count: int) -> list[str]:
    rng = random.Random(f"{seed}:message-ids")
    seen: set[str] = set()
    ids: list[str] = []
    while len(ids) < count:
        message_id = meteor_id(rng)
        if message_id not in seen:
            seen.add(message_id)
            ids.append(message_id)
    return ids
