from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals.notifications import notify
        from approvals.services import (
            after_commit_hooks,
            request_create_for_run,
            request_withdraw_for_run,
        )
        from governance import hooks

        if request_create_for_run not in hooks.held_run_hooks:
            hooks.held_run_hooks.append(request_create_for_run)
        if request_withdraw_for_run not in hooks.cancelled_run_hooks:
            hooks.cancelled_run_hooks.append(request_withdraw_for_run)
        from approvals.callbacks import callback_fire

        if callback_fire not in hooks.finished_run_hooks:
            hooks.finished_run_hooks.append(callback_fire)
        from approvals.tasks import on_request_event

        # The impact preview first, so that a notification sent inline can include it.
        for hook in (on_request_event, notify):
            if hook not in after_commit_hooks:
                after_commit_hooks.append(hook)
