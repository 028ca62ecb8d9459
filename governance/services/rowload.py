"""Model instances from one hand-written join, for the few lookups every governed call makes.

The token lookup, the caller's groups and the connection with its grants would take the ORM
four queries, and compiling them costs more CPU than the database spends answering (profiled
for issue 11: about 2 ms each on the benchmark machine). Here the SQL is written once per
process from the models' own metadata, and each row is turned into instances with the same
converters the ORM applies (SQLite's text dates, JSON, booleans), so the instances are the
ones a queryset would give.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from django.db import connection as db
from django.db.models import Model


@contextmanager
def hot_cursor() -> Iterator[Any]:
    """A cursor for the few statements every governed call runs (the token, the connection
    and its grants, the run's two records): on PostgreSQL the server keeps their plans.

    Django's cursors bind parameters on the client, so PostgreSQL parses and plans each of
    these joins on every call: about 0.75 ms for the token join, against 0.15 ms once it is
    prepared (measured for issue 11). This one binds on the server, and the connection
    prepares each statement on its first run (`prepare_threshold`, set in `env.py`; without
    it the statements are still correct, only unprepared). The statements are a handful of
    fixed texts, so the connection's cache of prepared statements stays small. It is still
    Django's cursor wrapper: errors, query logging and execute wrappers behave as usual.
    """
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            yield cursor
        return
    import psycopg  # only PostgreSQL's backend has it loaded

    db.close_if_health_check_failed()
    db.ensure_connection()
    with db.wrap_database_errors:
        raw = psycopg.Cursor(db.connection)
    db.validate_thread_sharing()  # as Django's own cursor() does, then its same wrappers
    wrap = db.make_debug_cursor if db.queries_logged else db.make_cursor
    with wrap(raw) as cursor:  # type: ignore[arg-type]  # a DB-API cursor, as Django passes
        yield cursor


def columns(model: type[Model], alias: str) -> str:
    """Every concrete column of `model`, qualified by `alias`, in field order."""
    quote = db.ops.quote_name
    return ", ".join(f"{alias}.{quote(f.column)}" for f in model._meta.concrete_fields)


def width(model: type[Model]) -> int:
    return len(model._meta.concrete_fields)


def table(model: type[Model]) -> str:
    return db.ops.quote_name(model._meta.db_table)


def column(model: type[Model], field: str) -> str:
    name: Any = model._meta.get_field(field).column  # type: ignore[union-attr]
    return db.ops.quote_name(name)


@cache
def _layout(model: type[Model]) -> tuple[list[str], list[list[Callable[..., Any]]], list[Any], int]:
    fields = model._meta.concrete_fields
    names = [f.attname for f in fields]
    expressions = [f.get_col(model._meta.db_table) for f in fields]
    converters = [
        db.ops.get_db_converters(e) + e.get_db_converters(db)  # type: ignore[arg-type]
        for e in expressions
    ]
    primary = next(i for i, f in enumerate(fields) if f.primary_key)
    return names, converters, expressions, primary


def instance(model: type[Model], values: Sequence[Any]) -> Any:
    """The `model` instance for these column values (as `columns` lists them), or None when
    its primary key is NULL (an outer join that found nothing)."""
    names, converters, expressions, primary = _layout(model)
    if values[primary] is None:
        return None
    converted = []
    for value, chain, expression in zip(values, converters, expressions, strict=True):
        for convert in chain:
            value = convert(value, expression, db)
        converted.append(value)
    return model.from_db(db.alias, names, converted)
