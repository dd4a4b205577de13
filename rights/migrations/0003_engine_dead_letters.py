"""The deadline engine: dead letters (effects refused for good) and one remote call at a time
per content item."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rights", "0002_audit_append_only"),
    ]

    operations = [
        migrations.AddField(
            model_name="removaleffect",
            name="dead_at",
            field=models.DateTimeField(
                blank=True,
                help_text="refused for good: not retried until staff retry it",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="removaleffect",
            name="call_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="removaleffect",
            index=models.Index(
                condition=models.Q(("dead_at__isnull", False), ("done_at__isnull", True)),
                fields=["dead_at"],
                name="removaleffect_dead",
            ),
        ),
    ]
