from typing import Any

from django.apps import AppConfig
from django.core.exceptions import FieldDoesNotExist
from django.db.models.signals import post_migrate


class RightsConfig(AppConfig):
    name = "rights"
    verbose_name = "Content rights and takedowns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from rights import checks  # noqa: F401  (registers the system checks)

        post_migrate.connect(rules_rekey, sender=self)


def rules_rekey(sender: AppConfig, using: str, apps: Any = None, **kwargs: Any) -> None:
    """After every `migrate`: the suppression rules whose keys another version of the key
    functions or of the Public Suffix List computed get theirs computed again, before the
    release serves a publication check."""
    if apps is not None:
        try:
            apps.get_model("rights", "Suppression")._meta.get_field("key_version")
        except (LookupError, FieldDoesNotExist):
            return  # migrated back to before rules had keys
    from rights.models import Suppression

    changed = Suppression.objects.using(using).stale().rekey()
    if changed and kwargs.get("verbosity", 1) >= 1:
        print(f"Suppression rules re-keyed: {changed}")
