"""The sandbox sends webhooks: simulated chats and messages sent through the API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

CLI = Path(sys.executable).with_name("chatra-sandbox")


def test_simulated_chats_send_their_events_in_order_and_answer_rest_gets(
    chatra_sandbox_factory, receiver
):
    sandbox = chatra_sandbox_factory(seed=7, webhook_url=receiver.url, clients=2, messages=0)
    conversations = sandbox.simulate_chats(10)

    assert len(receiver.bodies) == len(sandbox.webhook_deliveries())
    assert all(delivery.ok for delivery in sandbox.webhook_deliveries())
    for conversation in conversations:
        events = [b for b in receiver.bodies if b["client"]["id"] == conversation.client_id]
        names = [event["eventName"] for event in events]
        assert names[0] == "chatStarted"
        assert names[-1] == "chatTranscript"
        assert set(names[1:-1]) == {"chatFragment"}
        fragment_texts = [
            m.get("text", m.get("message")) for e in events[1:-1] for m in e["messages"]
        ]
        transcript_texts = [m.get("text", m.get("message")) for m in events[-1]["messages"]]
        stored_texts = [m["text"] for m in conversation.messages]
        assert fragment_texts == transcript_texts == stored_texts
        assert all(e["client"]["chatId"] == conversation.chat_id for e in events)
        assert sandbox.store.clients[conversation.client_id]["chatId"] == conversation.chat_id
        for message in conversation.messages:
            assert sandbox.store.messages[message["id"]]["clientId"] == conversation.client_id

    transcripts = [b for b in receiver.bodies if b["eventName"] == "chatTranscript"]
    messages = [m for t in transcripts for m in t["messages"]]
    # Every unknown of Chatra's payloads comes in each of its spellings.
    assert any("text" in m for m in messages)
    assert any("message" in m for m in messages)
    assert any("id" in m for m in messages)
    assert any("id" not in m for m in messages)
    assert any("id" not in m and "createdAt" not in m for m in messages)
    assert any("html" in m for m in messages)
    assert any(t["agents"] == [] for t in transcripts)
    assert any(t["agents"] for t in transcripts)

    # The REST API answers for the simulated clients, escaped IDs too.
    special = next(c for c in conversations if "@" in c.client_id)
    response = requests.get(
        f"{sandbox.api_url}/clients/{quote(special.client_id, safe='')}",
        headers={"Authorization": f"Chatra.Simple {sandbox.key_pair}"},
        timeout=10,
    )
    assert response.json()["chatId"] == special.chat_id


def test_same_seed_same_events(chatra_sandbox_factory, receiver_factory):
    received = []
    for _ in range(2):
        receiver = receiver_factory()
        sandbox = chatra_sandbox_factory(seed=3, webhook_url=receiver.url)
        sandbox.simulate_chats(4)
        received.append(receiver.bodies)
    assert received[0] == received[1]
    assert len(received[0]) >= 4 * 3


def test_a_message_sent_through_the_api_raises_a_fragment(chatra_sandbox_factory, receiver):
    sandbox = chatra_sandbox_factory(seed=5, webhook_url=receiver.url)
    client_id = sandbox.ids("clients")[0]
    response = requests.post(
        f"{sandbox.api_url}/pushedMessages/",
        json={"clientId": client_id, "text": "Your order shipped", "receivedFrom": "crm"},
        headers={"Authorization": f"Chatra.Simple {sandbox.key_pair}"},
        timeout=10,
    )
    assert response.status_code == 200
    sandbox.wait_for_webhooks()
    [event] = receiver.bodies
    assert event["eventName"] == "chatFragment"
    assert event["client"]["id"] == client_id
    [message] = event["messages"]
    assert message["id"] == response.json()["id"]
    assert message.get("text", message.get("message")) == "Your order shipped"
    assert message["isPushed"] is True
    assert message["receivedFrom"] == "crm"


def test_a_failed_delivery_is_retried(chatra_sandbox_factory, receiver_factory):
    receiver = receiver_factory(fail_first=2)
    sandbox = chatra_sandbox_factory(seed=1, webhook_url=receiver.url)
    sandbox.simulate_chats(1)
    first = sandbox.webhook_deliveries()[0]
    assert first.ok
    assert first.attempts == 3
    assert receiver.bodies[0]["eventName"] == "chatStarted"


def test_simulation_without_a_webhook_url_is_refused(chatra_sandbox):
    with pytest.raises(RuntimeError, match="webhook_url"):
        chatra_sandbox.simulate_chats(1)


def test_cli_simulates_chats(receiver):
    process = subprocess.Popen(
        [str(CLI), "--port", "0", "--webhook-url", receiver.url, "--simulate-chats", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline().startswith("chatra-sandbox listening on http://")
        line = process.stderr.readline()
        assert "simulated 3 chats" in line
        assert "0 failed" in line
        assert len(receiver.bodies) >= 9
    finally:
        process.terminate()
        process.wait(10)


def test_cli_refuses_simulation_without_url():
    result = subprocess.run(
        [str(CLI), "--simulate-chats", "3"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "--simulate-chats needs --webhook-url" in result.stderr
