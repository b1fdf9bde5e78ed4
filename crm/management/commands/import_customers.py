"""python manage.py import_customers FILE [--format csv|jsonl] [--dry-run]"""

from crm.management.commands._import import ImportCommand
from crm.models import ImportKind


class Command(ImportCommand):
    help = "Import customers (CSV or JSON Lines; CONTRACT.md 'Bulk import'). Rows naming a customer update it."
    kind = ImportKind.CUSTOMERS
