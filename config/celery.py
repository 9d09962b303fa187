"""The Celery app: `celery -A config worker` and `celery -A config beat`.

Configuration comes from Django settings (CELERY_* names); the beat schedule
lives there too, so one file says what runs when.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("outreach")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
