"""Deterministic fake Chatra records: IDs, agents, clients and messages.

Every record is built from its own ``random.Random`` seeded with the store seed, the stream and
the record's position, so any record can be generated on its own, on demand, and always comes
out the same. Nothing here depends on Python's per-process string hash randomisation.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Any

METEOR_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"
CLIENT_ID_ALPHABET = string.ascii_lowercase + string.digits

#: Top-level key that no documentation mentions; a few records of every stream carry it so that
#: tap tests can check how unknown keys are handled.
UNDOCUMENTED_KEY = "customFlag"

#: Client IDs that only work in a URL path when escaped. A website may set any string as the
#: client ID, so real accounts hold IDs like these next to Chatra's own 40-character ones.
SPECIAL_CLIENT_IDS = (
    "tom+news@example.com",
    "crm/contact/1001",
    "visitor 42",
    "клиент-7",
    "order#55?ref=mail",
    "50%off",
)

# 2022-01-01T00:00:00Z and a span of about two years, in epoch milliseconds.
_EPOCH_START_MS = 1_640_995_200_000
_EPOCH_SPAN_MS = 730 * 86_400_000

_FIRST_NAMES = ("Anna", "Ben", "Chloé", "Dmitri", "Emeka", "Fatima", "Günter", "Hana", "Iván")
_LAST_NAMES = ("Smith", "Müller", "Ivanova", "Okafor", "Tanaka", "García", "Rossi", "Nowak")
_CITIES = (
    ("Germany", "DE", "Berlin", "Europe/Berlin"),
    ("United States", "US", "Austin", "America/Chicago"),
    ("Japan", "JP", "Osaka", "Asia/Tokyo"),
    ("Brazil", "BR", "Recife", "America/Recife"),
    ("Nigeria", "NG", "Lagos", "Africa/Lagos"),
)
_BROWSERS = (
    ("Chrome", "120.0", "Windows"),
    ("Safari", "17.1", "macOS"),
    ("Firefox", "121.0", "Linux"),
)
_LANGUAGES = ("en", "de", "ja", "pt", "ru", "es")
_PAGES = ("/", "/pricing", "/docs/getting-started", "/checkout", "/blog/launch", "/contact")
_CLIENT_TEXTS = (
    "Hi there! Did you receive my tracking number?",
    "Is the premium plan billed monthly?",
    "Can I change the delivery address? 🚚",
    "Hallo, ist der Artikel noch verfügbar?",
    "注文をキャンセルしたいです。",
    'The "export" button does nothing\nwhen I click it.',
)
_AGENT_TEXTS = (
    "Hello! Let me check that for you.",
    "Your order ships today, here is the link: https://example.com/t/123",
    "Sure, I have updated the address.",
    "Danke! Der Artikel ist auf Lager.",
    "Thanks for waiting — a colleague will follow up by email.",
)
_FILES = (("invoice.pdf", False), ("screenshot.png", True), ("photo.jpg", True), ("log.txt", False))
_AGENT_NAMES = ("Daniela", "Marco", "Aiko", "Olusegun", "Sofía")
_INFO_KEYS = ("plan", "shop", "orders", "referrer", "userId")


@dataclass(frozen=True)
class Agent:
    """A seeded account agent who sends agent and pushed messages."""

    id: str
    name: str
    email: str


def meteor_id(rng: random.Random) -> str:
    """Return a 17-character Meteor-style ID like Chatra's own message and agent IDs."""
    return "".join(rng.choices(METEOR_ALPHABET, k=17))


def plain_client_id(rng: random.Random) -> str:
    """Return a 40-character lowercase alphanumeric client ID like Chatra assigns."""
    return "".join(rng.choices(CLIENT_ID_ALPHABET, k=40))


def record_rng(seed: int, stream: str, index: int) -> random.Random:
    """Return the random generator that builds record ``index`` of ``stream``."""
    return random.Random(f"{seed}:{stream}:{index}")


def make_agents(seed: int) -> tuple[Agent, ...]:
    """Return the account's agents for this seed."""
    rng = random.Random(f"{seed}:agents")
    return tuple(
        Agent(meteor_id(rng), name, f"{name.lower().replace('í', 'i')}@support.example.com")
        for name in _AGENT_NAMES
    )


def has_undocumented_key(index: int) -> bool:
    """Whether the seeded record at ``index`` (of any stream) carries ``UNDOCUMENTED_KEY``."""
    return index % 7 == 3


def _timestamp(rng: random.Random) -> int:
    return _EPOCH_START_MS + rng.randrange(_EPOCH_SPAN_MS)


def make_client(seed: int, index: int, client_id: str) -> dict[str, Any]:
    """Build the seeded client (visitor) record at ``index``."""
    rng = record_rng(seed, "clients", index)
    known = rng.random() < 0.7
    name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}" if known else None
    email = f"visitor{index}@mail.example.org" if known and rng.random() < 0.8 else None
    phone = f"+1-555-{rng.randrange(10_000):04d}" if known and rng.random() < 0.4 else None
    chat_id = meteor_id(rng)
    country, code, city, timezone = rng.choice(_CITIES)
    browser, version, system = rng.choice(_BROWSERS)
    last_visit = _timestamp(rng)
    record: dict[str, Any] = {
        "id": client_id,
        "chatId": chat_id,
        "displayedName": name or email or f"Visitor #{1000 + index}",
        "name": name,
        "email": email,
        "phone": phone,
        "notes": "Prefers email follow-ups." if rng.random() < 0.2 else None,
        "info": {key: _info_value(rng, key) for key in rng.sample(_INFO_KEYS, rng.randrange(4))},
        "basicInfo": {"name": name, "email": email, "phone": phone},
        "integrationData": {"crmId": f"CRM-{rng.randrange(10**6):06d}"}
        if rng.random() < 0.3
        else {},
        "location": {"country": country, "countryCode": code, "city": city, "timezone": timezone},
        "browser": {"name": browser, "version": version, "os": system},
        "language": rng.choice(_LANGUAGES),
        "lastVisitAt": last_visit,
        "lastVisitPages": [
            {"url": f"https://shop.example.com{page}", "visitedAt": last_visit + 30_000 * n}
            for n, page in enumerate(rng.sample(_PAGES, rng.randrange(1, 4)))
        ],
        "chatUrl": f"https://app.chatra.io/chat/{chat_id}",
        "createdAt": last_visit - rng.randrange(90 * 86_400_000),
    }
    if has_undocumented_key(index):
        record[UNDOCUMENTED_KEY] = {"enabled": True, "since": last_visit}
    return record


def _info_value(rng: random.Random, key: str) -> Any:
    if key == "orders":
        return rng.randrange(20)
    if key == "plan":
        return rng.choice(("free", "pro", "enterprise"))
    return f"{key}-{rng.randrange(1000)}"


def make_message(
    seed: int,
    index: int,
    message_id: str,
    *,
    pushed: bool,
    client_ids: list[str],
    agents: tuple[Agent, ...],
) -> dict[str, Any]:
    """Build the seeded message (or pushed message) record at ``index``."""
    stream = "pushed_messages" if pushed else "messages"
    rng = record_rng(seed, stream, index)
    is_agent = pushed or rng.random() < 0.5
    record: dict[str, Any] = {
        "id": message_id,
        "type": "agent" if is_agent else "client",
        "text": rng.choice(_AGENT_TEXTS if is_agent else _CLIENT_TEXTS),
        "clientId": client_ids[rng.randrange(len(client_ids))],
        "createdAt": _timestamp(rng),
        "isPushed": pushed,
    }
    if is_agent:
        agent = rng.choice(agents)
        record["agentId"] = agent.id
        record["agentName"] = agent.name
    if not pushed and rng.random() < 0.15:
        record["file"] = make_file(rng)
        record["text"] = record["file"]["filename"]
    if has_undocumented_key(index):
        record[UNDOCUMENTED_KEY] = {"enabled": True, "since": record["createdAt"]}
    return record


def make_file(rng: random.Random) -> dict[str, Any]:
    """Build the attachment of a file message."""
    filename, is_image = rng.choice(_FILES)
    token = meteor_id(rng)
    file: dict[str, Any] = {
        "filename": filename,
        "size": rng.randrange(1_000, 5_000_000),
        "isImage": is_image,
        "url": f"https://files.chatra.example/{token}/{filename}",
    }
    if is_image:
        file["imageInfo"] = {
            "width": rng.randrange(100, 4000),
            "height": rng.randrange(100, 3000),
            "previewUrl": f"https://files.chatra.example/{token}/preview-{filename}",
        }
    return file
