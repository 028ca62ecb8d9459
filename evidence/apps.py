from django.apps import AppConfig


class EvidenceConfig(AppConfig):
    name = "evidence"
    verbose_name = "Evidence reports"
    default_auto_field = "django.db.models.BigAutoField"
