"""Django settings of the conformance project; the database comes from the environment
(DJANGO_DB_ENGINE, DJANGO_DB_NAME) so one project runs against either libSQL backend."""

from __future__ import annotations

import os

SECRET_KEY = "conformance-test-only"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "tests.tools.djangoproj.shop"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": os.environ.get("DJANGO_DB_ENGINE", "django.db.backends.sqlite3"),
        "NAME": os.environ.get("DJANGO_DB_NAME", ":memory:"),
        "AUTH_TOKEN": "",
    }
}
