"""The supervisors' UI. Customer 360, queues and reports build on these registrations."""

from django.contrib import admin

from crm import models


@admin.register(models.ContactReason)
class ContactReasonAdmin(admin.ModelAdmin):
    list_display = ("code", "label", "active")
    list_filter = ("active",)
    search_fields = ("code", "label")


@admin.register(models.Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "supervisor")


@admin.register(models.StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "team", "supervisor")
    list_filter = ("team",)


class IdentityInline(admin.TabularInline):
    model = models.Identity
    extra = 0
    fields = ("kind", "value", "normalized", "verified_at", "source")
    readonly_fields = ("normalized",)


@admin.register(models.Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("display_name", "tier", "language", "created_at")
    list_filter = ("tier",)
    search_fields = ("display_name", "identities__normalized")
    inlines = [IdentityInline]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(erased_at__isnull=True, merged_into__isnull=True)


@admin.register(models.AccessAudit)
class AccessAuditAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "action", "customer", "interaction")
    list_filter = ("action",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
