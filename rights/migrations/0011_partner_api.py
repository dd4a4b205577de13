"""The partner API: per-outlet keys and the requests they made."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rights", "0010_domain_verification_and_suppression_reasons"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="PartnerKey",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "name",
                    models.CharField(
                        help_text="what the key is for, e.g. 'CMS production'", max_length=100
                    ),
                ),
                (
                    "scope",
                    models.CharField(
                        choices=[
                            ("takedowns", "Takedowns (file, list, read, withdraw; webhooks)"),
                            ("clearance", "Clearance (may a URL be published?)"),
                        ],
                        default="takedowns",
                        max_length=16,
                    ),
                ),
                ("prefix", models.CharField(editable=False, max_length=16, unique=True)),
                ("secret_digest", models.CharField(editable=False, max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "expires_at",
                    models.DateTimeField(blank=True, help_text="empty: never expires", null=True),
                ),
                ("revoked_at", models.DateTimeField(blank=True, editable=False, null=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "outlet",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="partner_keys",
                        to="rights.outlet",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("scope__in", ["takedowns", "clearance"])),
                        name="partnerkey_scope_valid",
                    )
                ],
            },
        ),
    ]
