"""A lookup key per suppression rule (an exact rule's article key, a prefix rule's prefix key, a
domain rule's domain), with the version of the key functions it was computed with, indexed among
the active rules: the publication check looks up one key per URL instead of each of its
spellings. The keys themselves are filled after every `migrate` (rights.apps: the rules whose
key version is not the running one), so a later change of the key functions or of the Public
Suffix List re-keys the rules standing before it the same way."""

import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("rights", "0015_console")]

    operations = [
        migrations.AddField(
            model_name="suppression",
            name="key",
            field=models.CharField(default="", editable=False, max_length=2048),
        ),
        migrations.AddField(
            model_name="suppression",
            name="key_version",
            field=models.CharField(default="", editable=False, max_length=40),
        ),
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
