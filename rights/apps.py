from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RightsConfig(AppConfig):
    name = "rights"
    verbose_name = "Content rights and takedowns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from rights import checks  # noqa: F401  (registers the system checks)
        from rights.models.enforcement import rules_rekey

        post_migrate.connect(rules_rekey, sender=self)
