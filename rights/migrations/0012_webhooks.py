"""Partner webhooks: endpoints and their deliveries."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("rights", "0011_partner_api")]

    operations = []
