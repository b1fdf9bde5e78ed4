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
