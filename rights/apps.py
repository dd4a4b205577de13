from django.apps import AppConfig


class RightsConfig(AppConfig):
    name = "rights"
    verbose_name = "Content rights and takedowns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from rights import checks  # noqa: F401  (registers the system checks)
