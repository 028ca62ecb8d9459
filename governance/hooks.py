"""Extension points for layers above core (approvals), so core never imports upward."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Called inside the submitting transaction with a QueryRun that is pending approval.
held_run_hooks: list[Callable[[Any], object]] = []
# Called when a queued or held run is cancelled by its requester.
cancelled_run_hooks: list[Callable[[Any], object]] = []
