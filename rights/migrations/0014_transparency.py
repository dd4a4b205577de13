"""Transparency: what the EU DSA transparency database already holds of our statements of
reasons, by puid, so that a statement is never sent twice."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("rights", "0013_mailbox")]

    operations = [
        migrations.CreateModel(
            name="SorSubmission",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("puid", models.CharField(max_length=500, unique=True)),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("created", "Created by our submission"),
                            (
                                "existing",
                                "Already held (the database refused its puid as not unique)",
                            ),
                        ],
                        max_length=16,
                    ),
                ),
                ("database_uuid", models.CharField(blank=True, max_length=64)),
                ("submitted_at", models.DateTimeField()),
                (
                    "statement",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="submissions",
                        to="rights.statementofreasons",
                    ),
                ),
                (
                    "target",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="rights.target",
                    ),
                ),
            ],
            options={
                "verbose_name": "submitted statement of reasons",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("statement", "target"), name="sor_submission_once"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("outcome__in", ["created", "existing"])),
                        name="sor_submission_outcome_valid",
                    ),
                ],
            },
        ),
    ]
