"""Roles are Django groups: agent, supervisor, integration (superusers have them all)."""

from rest_framework.permissions import BasePermission

AGENT = "agent"
SUPERVISOR = "supervisor"
INTEGRATION = "integration"
ROLES = (AGENT, SUPERVISOR, INTEGRATION)


def user_roles(user) -> frozenset[str]:
    """The user's roles, read once per request object and kept on it."""
    if not user or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_goldfish_roles", None)
    if cached is None:
        if user.is_superuser:
            cached = frozenset(ROLES)
        else:
            cached = frozenset(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._goldfish_roles = cached
    return cached


def is_agent(user) -> bool:
    """Agents and supervisors look up customers and record contacts."""
    return bool(user_roles(user) & {AGENT, SUPERVISOR})


def is_supervisor(user) -> bool:
    return SUPERVISOR in user_roles(user)


def is_integration(user) -> bool:
    return INTEGRATION in user_roles(user)


class IsAgent(BasePermission):
    message = "This needs the agent or supervisor role."

    def has_permission(self, request, view) -> bool:
        return is_agent(request.user)


class IsSupervisor(BasePermission):
    message = "This needs the supervisor role."

    def has_permission(self, request, view) -> bool:
        return is_supervisor(request.user)


class IsIntegration(BasePermission):
    message = "This needs the integration role."

    def has_permission(self, request, view) -> bool:
        return is_integration(request.user)
