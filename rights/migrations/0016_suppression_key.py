"""A lookup key per suppression rule (an exact rule's article key, a prefix rule's prefix key, a
domain rule's domain), filled for the rules standing before, and indexed among the active rules:
the publication check looks up one key per URL instead of each of its spellings."""

from typing import Any

import django.db.models.functions.text
from django.db import migrations, models

from rights.normalise import article_key, prefix_key

BATCH = 2000


def keys_fill(apps: Any, schema_editor: Any) -> None:
    """Every rule's key, lifted rules included (they may be looked at again), in batches."""
    Suppression = apps.get_model("rights", "Suppression")
    last = 0
    while True:
        rules = list(Suppression.objects.filter(pk__gt=last).order_by("pk")[:BATCH])
        if not rules:
            return
        for rule in rules:
            if rule.kind == "exact":
                rule.key = article_key(rule.value)
            elif rule.kind == "prefix":
                rule.key = prefix_key(rule.value)
            else:
                rule.key = rule.value
        Suppression.objects.bulk_update(rules, ["key"])
        last = rules[-1].pk


class Migration(migrations.Migration):
    dependencies = [("rights", "0015_console")]

    operations = [
        migrations.AddField(
            model_name="suppression",
            name="key",
            field=models.CharField(default="", editable=False, max_length=2048),
        ),
        migrations.RunPython(keys_fill, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="suppression",
            index=models.Index(
                condition=models.Q(("lifted_at__isnull", True)),
                fields=["key"],
                name="suppression_key",
            ),
        ),
        migrations.AddIndex(
            model_name="suppression",
            index=models.Index(
                django.db.models.functions.text.Left(
                    "key",
                    models.expressions.CombinedExpression(
                        django.db.models.functions.text.StrIndex("key", models.Value("/")),
                        "-",
                        models.Value(1),
                    ),
                ),
                condition=models.Q(("kind", "prefix"), ("lifted_at__isnull", True)),
                name="suppression_prefix_host",
            ),
        ),
    ]
