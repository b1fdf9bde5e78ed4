"""Issue 15: an import job records its error file's length as of its last committed batch.

Jobs from before keep NULL (their runs recorded nothing, so nothing of their file is cut);
jobs created from now on start at 0. Added nullable first, then given the default, so
existing rows are not rewritten with a 0 that would truncate their error files on resume.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0024_i15_customer_import_digest"),
    ]

    operations = [
        migrations.AddField(
            model_name="importjob",
            name="error_bytes",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="importjob",
            name="error_bytes",
            field=models.PositiveBigIntegerField(blank=True, default=0, null=True),
        ),
    ]
