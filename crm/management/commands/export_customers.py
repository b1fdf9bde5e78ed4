"""python manage.py export_customers FILE [--format csv|jsonl]: the import's format, for a round trip."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from crm import imports


class Command(BaseCommand):
    help = "Export every live customer (identities, current facts and preferences) in the import format."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--format", choices=imports.FORMATS, help="default: from the file name")
        parser.add_argument("--user", help="the username the export is audited under (default: the system)")

    def handle(self, *args, **options):
        path = Path(options["file"])
        actor = None
        if options["user"]:
            actor = get_user_model().objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"No user '{options['user']}'.")
        file_format = imports.format_for(path.name, options["format"])
        with path.open("w", encoding="utf-8", newline="") as out:
            count = imports.customers_export(out, file_format=file_format, actor=actor)
        self.stdout.write(f"{count} customers written to {path}.")
