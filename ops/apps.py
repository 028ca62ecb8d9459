from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: health probes, Prometheus metrics and the activity dashboard. A channel on
    top of everything else: it reads the core, the approvals and the audit record."""

    name = "ops"
    verbose_name = "Operations"
