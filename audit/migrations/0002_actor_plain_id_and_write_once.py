"""The actor becomes a plain id (deleting a user rewrote history through SET_NULL), and on
PostgreSQL the database refuses UPDATE, DELETE and TRUNCATE of the trail.

The only UPDATE let through is the sealer's: once per event, from an empty ``hash`` to a
value, changing nothing but ``prev_hash`` and ``hash``. A superuser can still switch triggers
off (``session_replication_role = replica``) or drop them: the hash chain and the signed
checkpoints make that detectable (``manage.py audit verify``), the trigger makes it deliberate.
"""

from django.conf import settings
from django.db import migrations, models

FUNCTION = "audit_auditevent_write_once"

CREATE = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.hash = '' AND NEW.hash <> ''
       AND (to_jsonb(NEW) - 'prev_hash' - 'hash') = (to_jsonb(OLD) - 'prev_hash' - 'hash')
    THEN
        RETURN NEW;  -- the sealer chaining an event, once
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_auditevent_no_rewrite
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION {FUNCTION}();
CREATE TRIGGER audit_auditevent_no_truncate
    BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}();
"""

DROP = f"""
DROP TRIGGER IF EXISTS audit_auditevent_no_truncate ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_auditevent_no_rewrite ON audit_auditevent;
DROP FUNCTION IF EXISTS {FUNCTION}();
"""


def create_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # 1. no foreign key constraint any more (the column and its index stay)
        migrations.AlterField(
            model_name="auditevent",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                null=True,
                db_constraint=False,
                on_delete=models.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        # 2. the same column, seen as a plain integer
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="auditevent", name="actor"),
                migrations.AddField(
                    model_name="auditevent",
                    name="actor_id",
                    field=models.IntegerField(blank=True, db_index=True, null=True),
                ),
            ],
        ),
        # 3. as wide as any user model's key
        migrations.AlterField(
            model_name="auditevent",
            name="actor_id",
            field=models.BigIntegerField(blank=True, db_index=True, null=True),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
