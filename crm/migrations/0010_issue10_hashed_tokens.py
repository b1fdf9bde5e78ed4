"""Issue 10: API tokens move from DRF's authtoken (plain text) to knox (hashed).

Each existing token is carried over as its digest, so connectors keep working
(the demo's `cti` token among them): an integration account's token without expiry,
a person's expiring CRM_TOKEN_TTL_HOURS from now. The plain-text table is dropped.
"""

from django.db import migrations


def carry_over_plain_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return  # a new database: nothing was ever issued in plain text
    from django.conf import settings
    from django.utils import timezone

    from crm.tokens import legacy_digest

    AuthToken = apps.get_model("knox", "AuthToken")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    ttl = settings.REST_KNOX["TOKEN_TTL"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id FROM authtoken_token")
        rows = cursor.fetchall()
    for key, user_id in rows:
        user = User.objects.get(pk=user_id)
        roles = set(user.groups.values_list("name", flat=True))
        integration = "integration" in roles and not roles & {"agent", "supervisor"} and not user.is_superuser
        digest, token_key = legacy_digest(key)
        AuthToken(
            digest=digest, token_key=token_key, user_id=user_id, expiry=None if integration else timezone.now() + ttl
        ).save()
    schema_editor.execute("DROP TABLE authtoken_token")


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0009_interaction_db_defaults"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(carry_over_plain_tokens, migrations.RunPython.noop)]
