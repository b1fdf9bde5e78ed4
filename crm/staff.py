"""Who is who among staff: the line supervisor, the supervisors, the administrators."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from crm.models import StaffProfile
from crm.permissions import AGENT, SUPERVISOR

User = get_user_model()


def staff_users() -> QuerySet:
    return User.objects.filter(is_active=True).filter(Q(groups__name__in=[AGENT, SUPERVISOR]) | Q(is_superuser=True))


def supervisor_of(user) -> Any | None:
    """The line supervisor: the staff profile's, else the team's; never the person themself."""
    profile = StaffProfile.objects.select_related("supervisor", "team__supervisor").filter(user=user).first()
    if profile is None:
        return None
    for candidate in (profile.supervisor, profile.team.supervisor if profile.team else None):
        if candidate is not None and candidate.pk != user.pk and candidate.is_active:
            return candidate
    return None


def supervisors() -> list:
    return list(User.objects.filter(is_active=True, groups__name=SUPERVISOR).order_by("username")[:50])


def admins() -> list:
    return list(User.objects.filter(is_active=True, is_superuser=True).order_by("username")[:20])
