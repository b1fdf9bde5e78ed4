"""API tokens: django-rest-knox's hashed tokens, issued per login, expiring for people.

Only a SHA-512 digest of a token is stored, with its first 15 characters
(`token_key`, indexed) to find the row; the token itself is shown once, when it is
issued. People's tokens expire after CRM_TOKEN_TTL_HOURS; tokens of integration
accounts (the CTI connector) do not, and are rotated by issuing a new one and
revoking the old. A password change or a deactivation revokes all of a user's tokens.
"""

from __future__ import annotations

import datetime as dt
import re
from hmac import compare_digest

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.db.models.signals import pre_save
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken, get_digest_token
from knox.settings import CONSTANTS, knox_settings

from crm.permissions import AGENT, INTEGRATION, SUPERVISOR, user_roles

# knox issues 64 hex characters; tokens carried over from DRF's authtoken (migration
# 0010) have 40. Anything else cannot match, and a NUL byte would make PostgreSQL
# refuse the query (a 500 instead of a 401).
TOKEN_FORM = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")
KEY_LENGTH = CONSTANTS.TOKEN_KEY_LENGTH


def ttl_for(user) -> dt.timedelta | None:
    """How long a new token of this user lives: None (no expiry) for integration accounts only."""
    roles = user_roles(user)
    if INTEGRATION in roles and not roles & {AGENT, SUPERVISOR} and not user.is_superuser:
        return None
    return knox_settings.TOKEN_TTL


def issue(user) -> tuple[str, dt.datetime | None]:
    """A new token for the user (their other tokens stay valid): the token, and when it expires.

    Also the moment to delete the user's expired tokens, so authentication never has to.
    """
    AuthToken.objects.filter(user=user, expiry__lte=timezone.now()).delete()
    instance, token = AuthToken.objects.create(user=user, expiry=ttl_for(user))
    return token, instance.expiry


def revoke(token: AuthToken) -> None:
    token.delete()


def revoke_all(user) -> int:
    """Delete every token of the user; the number deleted."""
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    return deleted


def revoke_key(key: str) -> None:
    """Revoke the token given in full (a client logging itself out)."""
    for token in live_tokens(key):
        if digest_matches(key, token.digest):
            token.delete()


def rotate(token: AuthToken) -> tuple[str, dt.datetime | None]:
    """Replace one token by a new one for the same user: the new token, shown once."""
    user = token.user
    token.delete()
    return issue(user)


def is_well_formed(key: str) -> bool:
    return bool(TOKEN_FORM.match(key))


def live_tokens(key: str):
    """Unexpired tokens whose indexed key matches the presented token (normally zero or one row)."""
    return AuthToken.objects.filter(Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()), token_key=key[:KEY_LENGTH])


def digest_matches(key: str, digest: str) -> bool:
    """Constant-time comparison of the presented token's digest with a stored one."""
    return compare_digest(hash_token(key), digest)


def legacy_digest(key: str) -> tuple[str, str]:
    """(digest, token_key) of a token issued before hashing, for migration 0010."""
    return hash_token(key), key[:KEY_LENGTH]


def new_digest() -> tuple[str, str]:
    """(digest, token) for a token made outside `issue` (the admin's add form)."""
    return get_digest_token()


def _revoke_on_password_change_or_deactivation(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    """A changed password or a deactivated account ends every API token of the user.

    Sessions already end on a password change (Django's session hash) and on
    deactivation (the backend refuses inactive users); tokens need this.
    """
    if raw or instance.pk is None:
        return
    if update_fields is not None and not {"password", "is_active"} & set(update_fields):
        return
    before = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    if before is None:
        return
    if before["password"] != instance.password or (before["is_active"] and not instance.is_active):
        revoke_all(instance)


def connect_signals() -> None:
    pre_save.connect(
        _revoke_on_password_change_or_deactivation,
        sender=get_user_model(),
        dispatch_uid="crm-tokens-revoke-on-password-change",
    )
