"""Partner webhooks: endpoints and their deliveries, the outbox's webhook transport and partner
audience, and the staff permission to put a dead delivery back in line (for `lead` and `admin`;
registering an endpoint in the console is `manage_partner_keys`, which `admin` holds already).
"""

from typing import Any

import django.db.models.deletion
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

GRANTS = {
    "lead": [("rights", "retry_webhookdelivery"), ("rights", "view_webhookdelivery")],
    "admin": [
        ("rights", "retry_webhookdelivery"),
        ("rights", "view_webhookdelivery"),
        ("rights", "view_webhookendpoint"),
    ],
    "reviewer": [("rights", "view_webhookdelivery")],
}


def grants_add(apps: Any, schema_editor: Any) -> None:
    app_config = apps.get_app_config("rights")
    # Historical app configs have no models module, and create_permissions skips those.
    models_module = getattr(app_config, "models_module", None)
    app_config.models_module = models_module or True
    try:
        create_permissions(app_config, verbosity=0, apps=apps, using=schema_editor.connection.alias)
    finally:
        app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *[
                Permission.objects.get(content_type__app_label=label, codename=codename)
                for label, codename in wanted
            ]
        )


def grants_remove(apps: Any, schema_editor: Any) -> None:
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in GRANTS.items():
        for group in Group.objects.filter(name=name):
            group.permissions.remove(
                *Permission.objects.filter(
                    content_type__app_label="rights", codename__in=[c for _, c in wanted]
                )
            )


class Migration(migrations.Migration):
    dependencies = [
        ("rights", "0011_partner_api"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.AlterField(
            model_name="notification",
            name="audience",
            field=models.CharField(
                choices=[
                    ("requester", "The requester"),
                    ("reviewers", "Reviewers"),
                    ("leads", "Leads"),
                    ("partner", "Partner outlet"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="notification",
            name="transport",
            field=models.CharField(
                choices=[("email", "Email"), ("webhook", "Partner webhook")],
                default="email",
                max_length=16,
            ),
        ),
        migrations.CreateModel(
            name="WebhookEndpoint",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("url", models.URLField(max_length=2048)),
                ("secret", models.CharField(editable=False, max_length=80)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("secret_rotated_at", models.DateTimeField()),
                (
                    "outlet",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="webhook_endpoint",
                        to="rights.outlet",
                    ),
                ),
            ],
            options={"ordering": ["outlet"]},
        ),
        migrations.CreateModel(
            name="WebhookDelivery",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("message_id", models.CharField(max_length=40, unique=True)),
                ("event_type", models.CharField(max_length=32)),
                ("payload", models.JSONField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("delivered", "Delivered"),
                            ("dead", "Dead letter"),
                        ],
                        default="pending",
                        max_length=12,
                    ),
                ),
                ("give_up_after", models.PositiveIntegerField()),
                ("last_status", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("last_response", models.CharField(blank=True, max_length=200)),
                ("last_attempt_at", models.DateTimeField(blank=True, null=True)),
                ("dead_at", models.DateTimeField(blank=True, null=True)),
                (
                    "notification",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="webhook",
                        to="rights.notification",
                    ),
                ),
                (
                    "outlet",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="webhook_deliveries",
                        to="rights.outlet",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "webhook deliveries",
                "ordering": ["-pk"],
                "permissions": [
                    ("retry_webhookdelivery", "Can put dead webhook deliveries back in line")
                ],
                "indexes": [
                    models.Index(fields=["outlet", "-id"], name="webhookdelivery_outlet"),
                    models.Index(fields=["state", "-id"], name="webhookdelivery_state"),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("state__in", ["pending", "delivered", "dead"])),
                        name="webhookdelivery_state_valid",
                    )
                ],
            },
        ),
        migrations.RunPython(grants_add, grants_remove),
    ]
