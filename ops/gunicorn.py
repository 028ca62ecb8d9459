"""gunicorn settings for Warden: `gunicorn -c python:ops.gunicorn governance.wsgi`.

Only what metrics need: in prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR
set), a web worker that exits is marked dead so its live gauges stop counting. Everything else
(bind, workers, timeouts) comes from the command line or GUNICORN_CMD_ARGS.
"""

from __future__ import annotations

import os
from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
