"""SandboxServer lifecycle, the CLI and the pytest plugin."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from chatra_sandbox import SandboxServer

CLI = Path(sys.executable).with_name("chatra-sandbox")


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_starts_fast_serves_and_stops_cleanly():
    server = SandboxServer()
    start = time.monotonic()
    server.start()
    assert time.monotonic() - start < 0.5
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
    assert server.api_url == server.url + "/api"
    assert server.key_pair == "sandbox-public:sandbox-secret"
    port = server.port
    assert port_is_open(port)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 0.5
    assert not port_is_open(port)
    server.stop()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url


def test_stop_with_open_keep_alive_connection_and_context_manager():
    with SandboxServer(public_key="pub", secret_key="sec") as server:
        session = requests.Session()
        session.headers["Authorization"] = "Chatra.Simple pub:sec"
        assert session.get(f"{server.api_url}/clients/{server.ids('clients')[0]}", timeout=10).ok
        port = server.port
    assert not port_is_open(port)
    session.close()


def test_cannot_start_twice(chatra_sandbox):
    with pytest.raises(RuntimeError, match="only once"):
        chatra_sandbox.start()


def test_port_in_use_is_reported(chatra_sandbox, caplog):
    with pytest.raises(RuntimeError, match="could not start"):
        SandboxServer(port=chatra_sandbox.port).start()
    assert "address already in use" in caplog.text
    caplog.clear()


def test_keep_alive_connection_is_reused(api, agent_message_id, caplog):
    with caplog.at_level(logging.DEBUG, logger="urllib3"):
        for _ in range(50):
            assert api.get(f"/messages/{agent_message_id}").status_code == 200
    assert caplog.text.count("Starting new HTTP connection") == 1


def test_concurrent_clients(api, chatra_sandbox):
    ids = chatra_sandbox.ids("messages")

    def fetch(message_id: str) -> int:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Chatra.Simple {chatra_sandbox.key_pair}"
            url = f"{chatra_sandbox.api_url}/messages/{message_id}"
            return session.get(url, timeout=10).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(fetch, ids * 3)) == {200}
    assert len(chatra_sandbox.request_log()) == len(ids) * 3


def test_fixture_defaults(chatra_sandbox):
    assert len(chatra_sandbox.ids("clients")) == 20
    assert len(chatra_sandbox.ids("messages")) == 60
    assert len(chatra_sandbox.ids("pushed_messages")) == 15
    assert chatra_sandbox.config()["requests_per_minute"] == 0


def test_factory_servers_are_stopped_at_teardown(tmp_path):
    url_file = tmp_path / "urls.txt"
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            f"""
            def test_start(chatra_sandbox, chatra_sandbox_factory):
                other = chatra_sandbox_factory(clients=3, messages=0, pushed_messages=0)
                assert len(other.ids("clients")) == 3
                with open({str(url_file)!r}, "w") as f:
                    f.write(f"{{chatra_sandbox.port}} {{other.port}}")
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ports = [int(p) for p in url_file.read_text(encoding="utf-8").split()]
    assert not any(port_is_open(port) for port in ports)


def test_cli_serves_until_terminated(tmp_path):
    ids_dir = tmp_path / "ids"
    process = subprocess.Popen(
        [
            str(CLI),
            "--port",
            "0",
            "--seed",
            "7",
            "--clients",
            "5",
            "--messages",
            "8",
            "--pushed-messages",
            "2",
            "--ids-dir",
            str(ids_dir),
            "--requests-per-minute",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.fullmatch(r"chatra-sandbox listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        url = match.group(1)
        message_id = (ids_dir / "messages.txt").read_text(encoding="utf-8").split()[0]
        response = requests.get(
            f"{url}/api/messages/{message_id}",
            headers={"Authorization": "Chatra.Simple sandbox-public:sandbox-secret"},
            timeout=10,
        )
        assert response.status_code == 200
        assert message_id == SandboxServer(seed=7, clients=5, messages=8).ids("messages")[0]
        assert len((ids_dir / "clients.txt").read_text(encoding="utf-8").splitlines()) == 5
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_cli_fault_options(tmp_path):
    process = subprocess.Popen(
        [
            str(CLI),
            "--port",
            "0",
            "--burst-429",
            "0:1",
            "--no-retry-after",
            "--fail-id",
            "a=b=2",
            "--error-rate",
            "0",
            "--rate-limit-mode",
            "sliding-window",
            "--rate-limit-window",
            "10",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().rsplit(" ", 1)[-1].strip()
        config = requests.get(f"{url}/_sandbox/config", timeout=10).json()
        assert config["burst_429"] == {"every": 0, "count": 1}
        assert config["retry_after"] is False
        assert config["fail_ids"] == {"a=b": 2}
        assert config["requests_per_minute"] == 60
        assert config["rate_limit_mode"] == "sliding_window"
        assert config["rate_limit_window"] == 10
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
    assert process.returncode == 0


@pytest.mark.parametrize(
    "args",
    [["--error-rate", "3"], ["--fail-id", "nocount"], ["--rate-limit-window", "0"]],
)
def test_cli_rejects_bad_options(args):
    result = subprocess.run(
        [str(CLI), "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 2
    assert "usage:" in result.stderr
