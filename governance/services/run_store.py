"""A run's durable records on the hot path, in as few round trips as the database allows.

Every governed statement commits its run and `query.submitted` event before it runs, and its
outcome and event after it: two commits auditing cannot do without. For a read only the
second waits for the disk (see `run_insert`); no row is released before it. Through the ORM
each is BEGIN, two statements and COMMIT, and each statement costs more Django CPU than the
database spends on it. On PostgreSQL each pair here is one statement, a data-modifying WITH, which
commits (or fails) as one unit. Its text is built once from the models' metadata and its values
go through the field methods the ORM's own INSERT and UPDATE use, so the rows are the same.
Other databases (SQLite in development) get the ORM inside one transaction.
`run_is_queued` spares a late task delivery the ORM's three-table load of a run it cannot take.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import connection as db
from django.db import models, transaction

from audit.models import AuditEvent
from governance.models import QueryRun
from governance.services.rowload import hot_cursor


def run_insert(run: QueryRun, events: Sequence[AuditEvent], *, durable: bool = True) -> None:
    """Insert the new `run` and the `events` about it (their `run_id` is set here) together.

    `durable=False` is for a read that has yet to run: its outcome is committed synchronously
    before any row is released, and PostgreSQL's WAL is flushed in order, so that commit makes
    this one durable too. Until then a crash can lose the intent of a read nobody saw.
    """
    if db.vendor != "postgresql" or len(events) != 1:
        with transaction.atomic():
            run.save(force_insert=True)
            for event in events:
                event.run_id = run.pk
                event.save(force_insert=True)
        return
    (event,) = events
    # An enclosing transaction decides for itself: the setting would outlive this statement.
    lazy = not (durable or db.in_atomic_block)
    with hot_cursor() as cursor:
        # One statement runs as one transaction: the setting lasts until its commit alone.
        cursor.execute(
            _insert_with_event_sql(), [*_values(run), *_values(event, skip="run_id"), lazy]
        )
        event.pk, run.pk, _, _ = cursor.fetchone()
    event.run_id = run.pk
    _saved(run)
    _saved(event)


def run_update(run_id: int, status: str, fields: dict[str, Any], event: AuditEvent) -> bool:
    """Set `fields` on the run if it is still in `status` (a conditional UPDATE: whoever moved
    it on first wins) and insert `event` either way, together. Whether the run was updated."""
    if db.vendor != "postgresql":
        with transaction.atomic():
            updated = QueryRun.objects.filter(pk=run_id, status=status).update(**fields)
            event.save(force_insert=True)
        return updated == 1
    names = tuple(fields)
    values = [_field(n).get_db_prep_save(fields[n], db) for n in names]
    with hot_cursor() as cursor:
        cursor.execute(_update_with_event_sql(names), [*_values(event), *values, run_id, status])
        event.pk, updated, _ = cursor.fetchone()
    _saved(event)
    return bool(updated)


def run_is_queued(run_id: int) -> bool:
    """Whether the run waits for a worker: one indexed probe, no ORM query to compile."""
    with hot_cursor() as cursor:
        cursor.execute(_queued_sql(), [run_id, QueryRun.Status.QUEUED])
        return cursor.fetchone() is not None


def _insert_fields(model: type[models.Model], skip: str = "") -> list[models.Field[Any, Any]]:
    """The columns Django's INSERT writes: every concrete field but the auto primary key."""
    meta = model._meta
    return [f for f in meta.local_concrete_fields if f is not meta.auto_field and f.name != skip]


def _values(obj: models.Model, skip: str = "") -> list[Any]:
    """`obj`'s column values as the ORM's INSERT prepares them (auto_now_add included)."""
    values = []
    for field, as_is in _insert_plan(type(obj), skip):
        value = field.pre_save(obj, add=True)
        # A str in a text column is what the field's preparation returns anyway (to_python of
        # a str is the str); skipping it saves a third of this on the hot path.
        values.append(value if as_is and type(value) is str else field.get_db_prep_save(value, db))
    return values


@cache
def _insert_plan(
    model: type[models.Model], skip: str = ""
) -> tuple[tuple[models.Field[Any, Any], bool], ...]:
    text = (models.CharField, models.TextField)  # exactly these: subclasses may convert
    return tuple((f, type(f) in text) for f in _insert_fields(model, skip))


def _field(name: str) -> models.Field[Any, Any]:
    field = QueryRun._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def _saved(obj: models.Model) -> None:
    obj._state.adding = False
    obj._state.db = db.alias


def _table(model: type[models.Model]) -> str:
    return db.ops.quote_name(model._meta.db_table)


def _columns(fields: list[models.Field[Any, Any]]) -> tuple[str, str]:
    """(the quoted column list, its placeholders)."""
    names = ", ".join(db.ops.quote_name(f.column) for f in fields)
    return names, ", ".join(["%s"] * len(fields))


@cache
def _queued_sql() -> str:
    quote = db.ops.quote_name
    return f"SELECT 1 FROM {_table(QueryRun)} WHERE {quote('id')} = %s AND {quote('status')} = %s"


@cache
def _insert_with_event_sql() -> str:
    """The run and its event in one statement; audit_event_required (migration audit 0004)
    fails the whole statement if the event's INSERT produced no row."""
    run_columns, run_values = _columns(_insert_fields(QueryRun))
    event_columns, event_values = _columns(_insert_fields(AuditEvent, skip="run_id"))
    run_id, pk = db.ops.quote_name("run_id"), db.ops.quote_name("id")
    return (
        f"WITH run AS (INSERT INTO {_table(QueryRun)} ({run_columns}) VALUES ({run_values}) "
        f"RETURNING {pk}), "
        f"event AS (INSERT INTO {_table(AuditEvent)} ({event_columns}, {run_id}) "
        f"VALUES ({event_values}, (SELECT {pk} FROM run)) RETURNING {pk}, {run_id}) "
        f"SELECT event.{pk}, event.{run_id}, audit_event_required((SELECT count(*) FROM event)), "
        # The last parameter: whether this commit may skip waiting for the disk.
        "CASE WHEN %s THEN set_config('synchronous_commit', 'off', true) END "
        "FROM (SELECT 1) AS one LEFT JOIN event ON true"
    )


@cache
def _update_with_event_sql(names: tuple[str, ...]) -> str:
    """The run's new state only together with its event: the UPDATE waits on the event's
    INSERT, and audit_event_required fails the statement if that produced no row."""
    quote = db.ops.quote_name
    assignments = ", ".join(f"{quote(_field(n).column)} = %s" for n in names)
    event_columns, event_values = _columns(_insert_fields(AuditEvent))
    return (
        f"WITH event AS (INSERT INTO {_table(AuditEvent)} ({event_columns}) "
        f"VALUES ({event_values}) RETURNING {quote('id')}), "
        f"run AS (UPDATE {_table(QueryRun)} SET {assignments} "
        f"WHERE {quote('id')} = %s AND {quote('status')} = %s AND EXISTS (SELECT FROM event) "
        "RETURNING 1) "
        f"SELECT event.{quote('id')}, EXISTS (SELECT FROM run), "
        "audit_event_required((SELECT count(*) FROM event)) "
        "FROM (SELECT 1) AS one LEFT JOIN event ON true"
    )
