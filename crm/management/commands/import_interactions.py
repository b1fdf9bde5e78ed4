"""python manage.py import_interactions FILE [--format csv|jsonl] [--dry-run]"""

from crm.management.commands._import import ImportCommand
from crm.models import ImportKind


class Command(ImportCommand):
    help = "Import contact history (CSV or JSON Lines). An external_id already present is left unchanged."
    kind = ImportKind.INTERACTIONS
