"""The mailbox: inbound messages, stored raw before they are understood."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("rights", "0012_webhooks")]

    operations = []
