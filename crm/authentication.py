"""Token authentication: knox's hashed tokens, checked in one query.

knox's own TokenAuthentication also loads and sweeps all of the user's other tokens
on every request (a second query); here expired tokens are filtered in the same
query and deleted when the user next logs in (crm.tokens.issue).
"""

from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions

from crm import tokens

INVALID = _("Invalid token.")


class TokenAuthentication(KnoxTokenAuthentication):
    """`Authorization: Token <token>`; malformed tokens are refused before the database."""

    @staticmethod
    def decode(token: bytes | str) -> str:
        try:
            key = token.decode() if isinstance(token, bytes) else token
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID) from None
        if not tokens.is_well_formed(key):
            raise exceptions.AuthenticationFailed(INVALID)
        return key

    def authenticate_credentials(self, token):
        key = self.decode(token)
        for auth_token in tokens.live_tokens(key).select_related("user"):
            if tokens.digest_matches(key, auth_token.digest):
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(INVALID)
