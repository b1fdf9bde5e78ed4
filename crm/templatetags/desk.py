"""{% desk_tiles %}: the counts on the admin home (crm.desk)."""

from django import template

from crm import desk

register = template.Library()


@register.inclusion_tag("admin/crm/_desk_tiles.html")
def desk_tiles():
    return {"tiles": desk.desk_tiles()}
