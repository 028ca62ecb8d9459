"""Extension points for layers above core (approvals), so core never imports upward."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Called inside the submitting transaction with a QueryRun that is pending approval.
held_run_hooks: list[Callable[[Any], object]] = []
# Called when a queued or held run is cancelled by its requester.
cancelled_run_hooks: list[Callable[[Any], object]] = []
# Called once a run's outcome is recorded (any final status), with the run.
finished_run_hooks: list[Callable[[Any], object]] = []


def run_finished(run: Any) -> None:
    """Tell the layers above that `run` ended; a failing hook never undoes the outcome."""
    import logging

    for hook in finished_run_hooks:
        try:
            hook(run)
        except Exception:
            logging.getLogger("warden").exception("a finished-run hook failed for run %s", run.pk)
