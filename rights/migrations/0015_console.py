"""The staff console: the permissions added since its first migration."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("rights", "0014_transparency")]

    operations = []
