"""{% desk_tiles %}: the counts on the admin home (crm.desk)."""

from django import template

from crm import desk

register = template.Library()


@register.inclusion_tag("admin/crm/_desk_tiles.html")
def desk_tiles():
    return {"tiles": desk.desk_tiles()}


@register.filter
def code_label(value, labels=None):
    """A stored code as people read it: the taxonomy's label when given one, else 'router_model' → 'Router model'."""
    if not value:
        return value
    if isinstance(labels, dict) and value in labels:
        return labels[value]
    return str(value).replace("_", " ").capitalize()
