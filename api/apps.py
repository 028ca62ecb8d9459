from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    label = "api"
    verbose_name = "Token API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from api.budgets import run_ended
        from governance import hooks

        if run_ended not in hooks.finished_run_hooks:
            hooks.finished_run_hooks.append(run_ended)
