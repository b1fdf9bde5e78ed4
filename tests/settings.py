"""Test settings: the application's settings, minus HTTPS redirects and slow hashing."""

import os

os.environ.setdefault("CRM_HTTPS", "false")

from crm.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"feedback": "1000/minute"},
}

# issue 14: a "replica" alias mirroring the test database, so the read-replica router can be
# tested without a second server; it stays unused unless a test turns CRM_READ_REPLICA on.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    DATABASES["replica"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}  # noqa: F405
