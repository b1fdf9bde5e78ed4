"""Token authentication that reads the token, its user and the user's roles in one query."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection
from drf_spectacular.drainage import set_override
from rest_framework import exceptions
from rest_framework.authtoken.models import Token

from crm.authentication import TokenAuthentication
from crm.permissions import ROLES

User = get_user_model()
_USER_FIELDS = [f.attname for f in User._meta.concrete_fields]
# A constant statement (prepared once per connection by psycopg's server-side binding):
# authtoken_token's primary key, auth_user's primary key, auth_user_groups (user_id, group_id).
_TOKEN_SQL = f"""
SELECT t.created, ARRAY(SELECT g.name FROM auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id
                        WHERE ug.user_id = u.id AND g.name = ANY(%(roles)s)),
       {", ".join(f"u.{column}" for column in _USER_FIELDS)}
FROM authtoken_token t JOIN auth_user u ON u.id = t.user_id
WHERE t.key = %(key)s
"""  # noqa: S608 - column names come from the model; the key is a bound parameter


class TokenRolesAuthentication(TokenAuthentication):
    """DRF's token authentication, plus the roles that crm.permissions would read separately.

    Nothing is cached across requests, so a revoked token, a deactivated user or a
    changed group membership takes effect on the very next call.
    """

    def authenticate_credentials(self, key):
        if connection.vendor != "postgresql" or User._meta.db_table != "auth_user":
            return super().authenticate_credentials(key)  # refuses malformed keys too
        self.refuse_malformed(key)
        with connection.cursor() as cursor:
            cursor.execute(_TOKEN_SQL, {"key": key, "roles": list(ROLES)})
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        created, roles, *values = row
        user = User.from_db(connection.alias, _USER_FIELDS, values)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        # crm.permissions.user_roles reads this attribute before querying.
        user._goldfish_roles = frozenset(ROLES) if user.is_superuser else frozenset(roles)
        token = Token.from_db(connection.alias, ["key", "user_id", "created"], [key, user.pk, created])
        token.user = user
        return (user, token)


# In the OpenAPI schema this is the same "tokenAuth" scheme as DRF's token authentication
# (same header, same prefix); say so, rather than have two components of one name.
set_override(TokenRolesAuthentication, "suppress_collision_warning", True)
