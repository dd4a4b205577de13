"""The staff console's additions since its first migration: a TXT-verified domain's scheduled
re-checks (consecutive findings of the record gone, and when it was last looked up)."""

from django.db import migrations, models


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
            name="rechecked_at",
            field=models.DateTimeField(
                blank=True,
                null=True,
                help_text="when the TXT record was last looked up on schedule",
            ),
        ),
    ]
