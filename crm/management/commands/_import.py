"""What import_customers and import_interactions share: validate the file, run it, print the report."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from tqdm import tqdm

from crm import imports
from crm.models import ImportJob, ImportStatus


class ImportCommand(BaseCommand):
    kind = ""

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV with a header line, or JSON Lines (UTF-8)")
        parser.add_argument("--format", choices=imports.FORMATS, help="default: from the file name")
        parser.add_argument("--dry-run", action="store_true", help="validate everything, write nothing")
        parser.add_argument("--user", help="the username the import is audited under (default: none, the system)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No file {path}.")
        actor = None
        if options["user"]:
            actor = get_user_model().objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"No user '{options['user']}'.")
        try:
            job = imports.import_job_create(
                actor=actor,
                kind=self.kind,
                path=path.resolve(),
                file_name=path.name,
                file_format=options["format"],
                dry_run=options["dry_run"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        bar = tqdm(
            total=job.rows_total, unit="rows", unit_scale=True, disable=options["no_progress"], file=self.stderr._out
        )

        def progress(current: ImportJob) -> None:
            bar.total = max(bar.total or 0, current.rows_done)
            bar.update(current.rows_done - bar.n)

        try:
            # Not handed back on a database error: the operator runs it again, not a worker behind them.
            job = imports.import_run(job.pk, progress=progress, hand_back=False)
        except (KeyboardInterrupt, DatabaseError):
            bar.close()
            job.refresh_from_db()
            self._report(job)
            if job.status == ImportStatus.DONE:
                return
            raise CommandError(
                f"{job.failure or 'Stopped.'} Import the file again to load the rest: the lines loaded count as "
                "unchanged."
            ) from None
        bar.close()
        self._report(job)

    def _report(self, job: ImportJob) -> None:
        verb = "would be" if job.dry_run else "were"
        self.stdout.write(
            f"{job.rows_done} rows read: {job.created} {verb} created, {job.updated} updated, "
            f"{job.unchanged} unchanged, {job.rejected} rejected."
        )
        for problem in job.warnings:
            self.stdout.write(f"  warning: line {problem['line']}, {problem['field']}: {problem['message']}")
        for problem in job.errors:
            where = f"line {problem['line']}" + (f", {problem['field']}" if problem["field"] else "")
            self.stdout.write(f"  rejected: {where}: {problem['message']}")
        if job.rejected > len(job.errors):
            self.stdout.write(f"  ... {job.rejected - len(job.errors)} more in the error file")
        if job.error_path:
            self.stdout.write(f"Rejected lines with their reason: {job.error_path} (fix and import it again).")
