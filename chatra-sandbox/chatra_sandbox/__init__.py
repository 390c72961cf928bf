"""A local emulator of the Chatra REST API for tests, benchmarks and demos."""

from __future__ import annotations

from chatra_sandbox.config import Burst429, SandboxConfig
from chatra_sandbox.data import SandboxStore
from chatra_sandbox.generate import UNDOCUMENTED_KEY
from chatra_sandbox.server import SandboxServer

__all__ = ["UNDOCUMENTED_KEY", "Burst429", "SandboxConfig", "SandboxServer", "SandboxStore"]
