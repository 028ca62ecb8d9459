"""A function the run store's single-statement writes call, so that a run is never inserted or
moved on without its audit event: if the event's INSERT produced no row (a trigger someone
added that drops it, say), the whole statement fails and nothing of it stays."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION audit_event_required(recorded bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF recorded IS DISTINCT FROM 1 THEN
        RAISE EXCEPTION 'the audit event was not recorded: nothing is changed'
            USING ERRCODE = 'P0001';
    END IF;
    RETURN recorded;
END
$$;
"""
DROP = "DROP FUNCTION IF EXISTS audit_event_required(bigint);"


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_chain_mac_and_checkpoints")]
    operations = [migrations.RunPython(create, drop)]
