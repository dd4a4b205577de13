"""The Celery app. All settings live in config/settings.py under the CELERY_ namespace, the beat
schedule included, so there is one place to read them."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("rights")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
