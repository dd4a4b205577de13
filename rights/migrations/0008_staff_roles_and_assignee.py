"""The staff roles: groups `reviewer`, `lead` and `admin` with their permissions, and who is
working on a case (`assignee`).

Permissions are created after migrations by a post_migrate signal, which is too late for the
groups: `create_permissions` is called here for every app the groups draw on. The role table
is frozen here, as a migration must be; a later change to a role is a migration of its own.
"""

from typing import Any

import django.db.models.deletion
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

# Every model the console shows; each role may view them all.
VIEWED = [
    "takedownrequest",
    "target",
    "requester",
    "outlet",
    "outletdomain",
    "rightscontact",
    "contentitem",
    "suppression",
    "ladderrung",
    "removaleffect",
    "notification",
    "sweeperrun",
    "auditevent",
    "auditstream",
    "auditcheckpoint",
]
VIEW = [("rights", f"view_{model}") for model in VIEWED]
REVIEWER = [
    *VIEW,
    ("rights", "decide_case"),
    ("rights", "decide_appeal"),
    ("rights", "assign_case"),
]
LEAD = [
    *REVIEWER,
    ("rights", "restore_case"),
    ("rights", "suspend_requester"),
    ("rights", "view_sla_dashboard"),
    ("rights", "retry_removaleffect"),
]
ADMIN = [
    *VIEW,
    *[
        ("rights", f"{act}_{model}")
        for model in ["outlet", "outletdomain", "rightscontact", "suppression"]
        for act in ["add", "change", "delete"]
    ],
    ("rights", "add_contentitem"),
    ("rights", "change_contentitem"),
    ("rights", "change_requester"),
    ("rights", "erase_requester"),
    ("rights", "manage_partner_keys"),
    # Unlocking a colleague locked out by failed logins: delete the attempts (django-axes).
    ("axes", "view_accessattempt"),
    ("axes", "delete_accessattempt"),
    ("axes", "view_accesslog"),
    ("axes", "view_accessfailurelog"),
]
ROLES = {"reviewer": REVIEWER, "lead": LEAD, "admin": ADMIN}


def roles_create(apps: Any, schema_editor: Any) -> None:
    for label in ["auth", "contenttypes", "axes", "rights"]:
        app_config = apps.get_app_config(label)
        # Historical app configs have no models module, and create_permissions skips those.
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        try:
            create_permissions(
                app_config, verbosity=0, apps=apps, using=schema_editor.connection.alias
            )
        finally:
            app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = []
        for app_label, codename in wanted:
            # A missing permission is a mistake in the table above: fail loudly (DoesNotExist).
            permissions.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(permissions)


def roles_delete(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("rights", "0007_requester_redress_and_appeal_rounds"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="outlet",
            options={
                "ordering": ["name"],
                "permissions": [("manage_partner_keys", "Can create and revoke partner API keys")],
            },
        ),
        migrations.AlterModelOptions(
            name="removaleffect",
            options={"permissions": [("retry_removaleffect", "Can put dead letters back in line")]},
        ),
        migrations.AlterModelOptions(
            name="requester",
            options={
                "permissions": [
                    ("suspend_requester", "Can warn and suspend requesters, and lift a suspension"),
                    ("erase_requester", "Can erase a requester's personal data"),
                ]
            },
        ),
        migrations.AlterModelOptions(
            name="takedownrequest",
            options={
                "ordering": ["-received_at"],
                "permissions": [
                    ("decide_case", "Can decide cases (approve, reject)"),
                    ("decide_appeal", "Can decide appeals against a colleague's decision"),
                    ("assign_case", "Can claim cases and assign them to colleagues"),
                    ("restore_case", "Can restore content removed in error"),
                    ("view_sla_dashboard", "Can see the SLA dashboard"),
                ],
                "verbose_name": "case",
            },
        ),
        migrations.AddField(
            model_name="takedownrequest",
            name="assignee",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="assigned_cases",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(roles_create, roles_delete),
    ]
