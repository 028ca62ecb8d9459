from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        from governance import hooks, identity_events, metrics, signals  # noqa: F401

        if metrics.run_ended not in hooks.finished_run_hooks:
            hooks.finished_run_hooks.append(metrics.run_ended)
