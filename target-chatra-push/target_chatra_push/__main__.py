"""Run the target with `python -m target_chatra_push`."""

from __future__ import annotations

from target_chatra_push.target import TargetChatraPush

TargetChatraPush.cli()
