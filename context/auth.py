"""Token authentication that reads the token, its user and the user's roles in one query."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from drf_spectacular.drainage import set_override
from rest_framework import exceptions

from crm import tokens
from crm.authentication import INVALID, TokenAuthentication
from crm.permissions import ROLES

User = get_user_model()
_USER_FIELDS = [f.attname for f in User._meta.concrete_fields]
_TOKEN_FIELDS = ["digest", "token_key", "user_id", "created", "expiry"]
# A constant statement (prepared once per connection by psycopg's server-side binding):
# knox's token_key index finds the row, auth_user's primary key, auth_user_groups (user_id, group_id).
# The token's digest is compared in Python (constant time), not in SQL.
_TOKEN_SQL = f"""
SELECT t.digest, t.created, t.expiry,
       ARRAY(SELECT g.name FROM auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id
             WHERE ug.user_id = u.id AND g.name = ANY(%(roles)s)),
       {", ".join(f"u.{column}" for column in _USER_FIELDS)}
FROM {tokens.AuthToken._meta.db_table} t JOIN auth_user u ON u.id = t.user_id
WHERE t.token_key = %(token_key)s AND (t.expiry IS NULL OR t.expiry > %(now)s)
"""  # noqa: S608 - table and column names come from the models; values are bound parameters


class TokenRolesAuthentication(TokenAuthentication):
    """crm's token authentication, plus the roles that crm.permissions would read separately.

    Nothing is cached across requests, so a revoked or expired token, a deactivated
    user or a changed group membership takes effect on the very next call.
    """

    def authenticate_credentials(self, token):
        if connection.vendor != "postgresql" or User._meta.db_table != "auth_user":
            return super().authenticate_credentials(token)
        key = self.decode(token)
        with connection.cursor() as cursor:
            cursor.execute(
                _TOKEN_SQL, {"token_key": key[: tokens.KEY_LENGTH], "now": timezone.now(), "roles": list(ROLES)}
            )
            rows = cursor.fetchall()
        for digest, created, expiry, roles, *values in rows:
            if not tokens.digest_matches(key, digest):
                continue
            user = User.from_db(connection.alias, _USER_FIELDS, values)
            if not user.is_active:
                raise exceptions.AuthenticationFailed("User inactive or deleted.")
            # crm.permissions.user_roles reads this attribute before querying.
            user._goldfish_roles = frozenset(ROLES) if user.is_superuser else frozenset(roles)
            auth_token = tokens.AuthToken.from_db(
                connection.alias, _TOKEN_FIELDS, [digest, key[: tokens.KEY_LENGTH], user.pk, created, expiry]
            )
            auth_token.user = user
            return (user, auth_token)
        raise exceptions.AuthenticationFailed(INVALID)


# In the OpenAPI schema this is the same "tokenAuth" scheme as crm's token authentication
# (same header, same prefix; crm.api_schema.TokenScheme); say so, rather than have two components of one name.
set_override(TokenRolesAuthentication, "suppress_collision_warning", True)
