"""The database itself refuses UPDATE and DELETE on the audit trail.

PostgreSQL: a row trigger raising an exception. SQLite: BEFORE triggers that RAISE(ABORT).
TRUNCATE is a table owner's privilege; production runs the service under a role that does not
own the tables (see README, Operations).
"""

from django.db import migrations

TABLES = ("rights_auditevent", "rights_auditcheckpoint")

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION rights_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FUNCTION, params=None)
        for table in TABLES:
            schema_editor.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION rights_audit_append_only();"
            )
    elif vendor == "sqlite":
        for table in TABLES:
            for operation in ("UPDATE", "DELETE"):
                schema_editor.execute(
                    f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: "
                    f"{operation} on {table} refused'); END;"
                )
    else:
        raise RuntimeError(f"no append-only triggers for the {vendor} database")


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
        else:
            for operation in ("update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation};")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS rights_audit_append_only();")


class Migration(migrations.Migration):
    dependencies = [("rights", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
