"""The package's public names, imported on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import chatra_webhooks


def test_every_public_name_resolves() -> None:
    for name in chatra_webhooks.__all__:
        assert getattr(chatra_webhooks, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = chatra_webhooks.nothing


def test_the_pytest_plugin_loads_neither_the_server_nor_the_store() -> None:
    # Every test run of the repository loads the plugin; most never start an inbox.
    probe = (
        "import sys, chatra_webhooks.testing;"
        " print(sorted({'sqlalchemy', 'starlette'} & set(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]"
