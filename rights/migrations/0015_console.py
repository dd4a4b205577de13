"""The staff console's additions since its first migration: a TXT-verified domain's scheduled
re-checks (the token its record held when verified, consecutive findings of the record gone,
and when it was last looked up)."""

from typing import Any

from django.db import migrations, models


def verified_tokens_record(apps: Any, schema_editor: Any) -> None:
    """A domain verified by its TXT record before this: the token it holds is the one found."""
    OutletDomain = apps.get_model("rights", "OutletDomain")
    OutletDomain.objects.filter(verification_method="dns_txt").update(
        verified_token=models.F("verification_token")
    )


class Migration(migrations.Migration):
    dependencies = [("rights", "0014_transparency")]

    operations = [
        migrations.AddField(
            model_name="outletdomain",
            name="recheck_failures",
            field=models.PositiveSmallIntegerField(
                default=0, help_text="scheduled look-ups in a row that found the TXT record gone"
            ),
        ),
        migrations.AddField(
            model_name="outletdomain",
            name="verified_token",
            field=models.CharField(
                blank=True, help_text="the token the TXT record held when verified", max_length=64
            ),
        ),
        migrations.RunPython(verified_tokens_record, migrations.RunPython.noop),
        migrations.AddField(
            model_name="outletdomain",
            name="rechecked_at",
            field=models.DateTimeField(
                blank=True,
                null=True,
                help_text="when the TXT record was last looked up on schedule",
            ),
        ),
    ]
