"""The Celery application. Workers: `celery -A governance worker -l info`."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")

app = Celery("warden")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _django_logging(**_: Any) -> None:
    """Workers log as the web processes do (Django's LOGGING: the JSON format, the run id on
    each line), not in Celery's own format."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


# Worker heartbeats and the multiprocess metrics bookkeeping hang on Celery's worker signals.
from governance import heartbeat  # noqa: E402, F401
