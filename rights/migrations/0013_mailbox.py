"""The mailbox: inbound messages, stored raw before they are understood; outbox rows that answer
a message rather than a case; and the roles' reach over the mailbox's staff queue.

Every role sees the queue; reviewers and leads make a message into a case or dismiss it; only
leads read a message's raw source (it holds whatever the sender and every relay put in it).
"""

from typing import Any

import django.db.models.deletion
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

MAIL_ROLES = {
    "reviewer": ["view_inboundmessage", "triage_inboundmessage"],
    "lead": ["view_inboundmessage", "triage_inboundmessage", "view_raw_inboundmessage"],
    "admin": ["view_inboundmessage"],
}


def mail_roles_create(apps: Any, schema_editor: Any) -> None:
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
    for name, codenames in MAIL_ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for codename in codenames:
            group.permissions.add(
                Permission.objects.get(content_type__app_label="rights", codename=codename)
            )


def mail_roles_delete(apps: Any, schema_editor: Any) -> None:
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=MAIL_ROLES):
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="rights", codename__in=MAIL_ROLES[group.name]
            )
        )


class Migration(migrations.Migration):
    dependencies = [("rights", "0012_webhooks")]

    operations = [
        migrations.AlterField(
            model_name="notification",
            name="case",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="notifications",
                to="rights.takedownrequest",
            ),
        ),
        migrations.CreateModel(
            name="InboundMessage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(max_length=300, unique=True)),
                ("source", models.CharField(help_text="pipe (the MTA) or imap", max_length=8)),
                (
                    "raw",
                    models.BinaryField(help_text="the message's bytes, up to MAIL_MAX_BYTES"),
                ),
                (
                    "size",
                    models.PositiveIntegerField(help_text="the message's full size in bytes"),
                ),
                (
                    "truncated",
                    models.BooleanField(default=False, help_text="larger than MAIL_MAX_BYTES: cut"),
                ),
                ("received_at", models.DateTimeField()),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("stored", "Stored, not yet read"),
                            ("opened", "Opened a case"),
                            ("threaded", "Joined an existing case"),
                            ("answered", "Named no article of ours: told how to"),
                            ("ignored", "Automatic message: never answered"),
                            ("limited", "Over the sender's rate limit: not answered"),
                            ("needs_staff", "Not understood: waiting for staff"),
                            ("dismissed", "Dismissed by staff"),
                            ("case_by_staff", "Made into a case by staff"),
                        ],
                        default="stored",
                        max_length=16,
                    ),
                ),
                (
                    "reason",
                    models.CharField(blank=True, help_text="why it was set aside", max_length=64),
                ),
                ("message_id", models.CharField(blank=True, max_length=998)),
                (
                    "sender",
                    models.CharField(blank=True, help_text="the From address", max_length=254),
                ),
                (
                    "sender_verified",
                    models.BooleanField(
                        default=False,
                        help_text="our receiver's DMARC or aligned DKIM pass for its domain",
                    ),
                ),
                ("subject", models.CharField(blank=True, max_length=300)),
                (
                    "urls",
                    models.JSONField(default=list, help_text="every URL the message names"),
                ),
                ("processed_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "case",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="inbound_messages",
                        to="rights.takedownrequest",
                    ),
                ),
            ],
            options={
                "verbose_name": "inbound message",
                "ordering": ["-received_at", "-pk"],
                "permissions": [
                    ("view_raw_inboundmessage", "Can read an inbound message's raw source"),
                    (
                        "triage_inboundmessage",
                        "Can make an inbound message into a case or dismiss it",
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="notification",
            name="inbound",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="notifications",
                to="rights.inboundmessage",
            ),
        ),
        migrations.AddConstraint(
            model_name="notification",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("case__isnull", False), ("inbound__isnull", False), _connector="OR"
                ),
                name="notification_about_something",
            ),
        ),
        migrations.AddIndex(
            model_name="inboundmessage",
            index=models.Index(fields=["state", "received_at"], name="inbound_by_state"),
        ),
        migrations.AddIndex(
            model_name="inboundmessage",
            index=models.Index(fields=["sender", "received_at"], name="inbound_by_sender"),
        ),
        migrations.AddConstraint(
            model_name="inboundmessage",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "state__in",
                        [
                            "stored",
                            "opened",
                            "threaded",
                            "answered",
                            "ignored",
                            "limited",
                            "needs_staff",
                            "dismissed",
                            "case_by_staff",
                        ],
                    )
                ),
                name="inbound_state_valid",
            ),
        ),
        migrations.RunPython(mail_roles_create, mail_roles_delete),
    ]
