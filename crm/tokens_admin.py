"""The admin's API tokens page (issue 10): list, issue, rotate and revoke; superusers only.

A token is shown once, in the message after it is issued or rotated; the database
keeps only its digest. Deleting a token revokes it. Integration accounts' tokens do
not expire, so rotation (a new token, the old one revoked at once) is how they change.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from knox.models import AuthToken

from crm import tokens


class IssueTokenForm(forms.ModelForm):
    """Only the user is chosen; the token and its expiry follow the user's role."""

    class Meta:
        model = AuthToken
        fields = ["user"]


def _shown_once(modeladmin, request, user, token, expires_at) -> None:
    until = f"expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "does not expire"
    modeladmin.message_user(
        request, f"New token for {user.get_username()} ({until}); copy it now, it is not shown again: {token}"
    )


@admin.action(description="Rotate the selected tokens (issue new ones, revoke these)")
def rotate_tokens(modeladmin, request, queryset):
    for auth_token in queryset.select_related("user"):
        token, expires_at = tokens.rotate(auth_token)
        _shown_once(modeladmin, request, auth_token.user, token, expires_at)


class AuthTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "token_key", "created", "expiry"]
    list_filter = ["user__groups"]
    search_fields = ["user__" + get_user_model().USERNAME_FIELD]
    actions = [rotate_tokens]
    form = IssueTokenForm
    raw_id_fields = ["user"]

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return False  # a token is issued, rotated or revoked, never edited

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def save_model(self, request, obj, form, change):
        token, expires_at = tokens.issue(obj.user)
        _shown_once(self, request, obj.user, token, expires_at)

    def response_add(self, request, obj, post_url_continue=None):
        return self.response_post_save_add(request, obj)


def register(site: admin.AdminSite) -> None:
    if site.is_registered(AuthToken):
        site.unregister(AuthToken)  # knox's own page shows digests and lets expiry be typed in
    site.register(AuthToken, AuthTokenAdmin)
