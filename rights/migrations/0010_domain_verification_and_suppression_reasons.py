"""How each outlet domain was verified (DNS TXT record or staff attestation), and why each
suppression rule was made and lifted.

A domain verified before verification was recorded keeps its trust: it is recorded as a staff
attestation saying so, so that no domain is verified without a method. Unverified ones stay so.
"""

from typing import Any

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

NOTE = "verified before verification was recorded"


def verifications_record(apps: Any, schema_editor: Any) -> None:
    OutletDomain = apps.get_model("rights", "OutletDomain")
    OutletDomain.objects.filter(verified_at__isnull=False, verification_method="").update(
        verification_method="staff_attestation", verification_note=NOTE
    )


class Migration(migrations.Migration):
    dependencies = [
        ("rights", "0009_statements_of_reasons_and_requester_controls"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="outletdomain",
            name="verification_method",
            field=models.CharField(
                blank=True,
                choices=[("dns_txt", "DNS TXT record"), ("staff_attestation", "Staff attestation")],
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="outletdomain",
            name="verification_note",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="outletdomain",
            name="verification_token",
            field=models.CharField(
                blank=True, help_text="the value the TXT record must hold", max_length=64
            ),
        ),
        migrations.AddField(
            model_name="outletdomain",
            name="verified_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="suppression",
            name="lift_reason",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="suppression",
            name="lifted_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="suppression",
            name="reason",
            field=models.TextField(
                blank=True, help_text="why staff made the rule (empty for a case's)"
            ),
        ),
        migrations.RunPython(verifications_record, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="outletdomain",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("verification_method", ""), ("verified_at__isnull", True)),
                    models.Q(
                        ("verified_at__isnull", False),
                        ("verification_method__in", ["dns_txt", "staff_attestation"]),
                    ),
                    _connector="OR",
                ),
                name="outletdomain_verified_how",
            ),
        ),
    ]
