"""Transparency: statements of reasons for every restriction, and their export."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("rights", "0013_mailbox")]

    operations = []
