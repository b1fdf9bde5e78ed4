"""Token authentication that reads the token, its user and the user's roles in one query."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import OuterRef
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from crm.permissions import ROLES


class TokenRolesAuthentication(TokenAuthentication):
    """DRF's token authentication, plus the roles that crm.permissions would read separately.

    Nothing is cached across requests, so a revoked token, a deactivated user or a
    changed group membership takes effect on the very next call.
    """

    def authenticate_credentials(self, key):
        if connection.vendor != "postgresql":
            return super().authenticate_credentials(key)
        roles = Group.objects.filter(user=OuterRef("user_id"), name__in=ROLES).values("name")
        try:
            token = Token.objects.select_related("user").annotate(goldfish_roles=ArraySubquery(roles)).get(key=key)
        except Token.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        # crm.permissions.user_roles reads this attribute before querying.
        user._goldfish_roles = frozenset(ROLES) if user.is_superuser else frozenset(token.goldfish_roles)
        return (user, token)
