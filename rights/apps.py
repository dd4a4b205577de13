from django.apps import AppConfig


class RightsConfig(AppConfig):
    name = "rights"
    verbose_name = "Content rights and takedowns"
    default_auto_field = "django.db.models.BigAutoField"
