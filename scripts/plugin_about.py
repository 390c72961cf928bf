"""What the plugins say about themselves: `<plugin> --about`, shared by the doc generators."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PLUGINS = ("tap-chatra", "target-chatra-push")


def about_output(plugin: str, about_format: str) -> str:
    """The output of `<plugin> --about --format=<about_format>`, from this virtualenv."""
    executable = Path(sys.executable).parent / plugin
    return subprocess.run(
        [str(executable), "--about", f"--format={about_format}"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
