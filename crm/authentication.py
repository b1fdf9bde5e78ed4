"""DRF token authentication that refuses malformed keys before they reach the database."""

import re

from rest_framework import authentication, exceptions

# authtoken keys are 40 hex characters; anything else cannot match, and a NUL byte
# would make PostgreSQL refuse the query (a 500 instead of a 401).
_KEY_FORM = re.compile(r"^[0-9a-f]{40}$")


class TokenAuthentication(authentication.TokenAuthentication):
    @staticmethod
    def refuse_malformed(key: str) -> None:
        if not _KEY_FORM.match(key):
            raise exceptions.AuthenticationFailed("Invalid token.")

    def authenticate_credentials(self, key):
        self.refuse_malformed(key)
        return super().authenticate_credentials(key)
