"""The partner API: per-outlet keys and the requests they made."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("rights", "0010_domain_verification_and_suppression_reasons")]

    operations = []
