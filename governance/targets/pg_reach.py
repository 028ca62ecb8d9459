"""What a write on PostgreSQL reaches, and so whether a dry run of it can be undone.

A rolled-back transaction undoes every change to ordinary tables, but a trigger or a rule can
call out of it (dblink, a foreign server, NOTIFY to a listener that acts), and a foreign table
writes to another server. Those may sit on the written tables, on their partitions and
inheritance children, or on the tables whose foreign keys cascade from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

# For each table: its name, kind, whether user triggers or rules act on it, and the tables a
# write to it reaches: partitions and inheritance children, and tables whose foreign keys
# cascade, set null or set a default when it changes.
_REACH_SQL = """
SELECT c.oid::regclass::text, c.relkind::text,
       EXISTS (SELECT FROM pg_trigger g
               WHERE g.tgrelid = c.oid AND NOT g.tgisinternal AND g.tgenabled <> 'D'),
       EXISTS (SELECT FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN'),
       ARRAY(SELECT i.inhrelid::int8 FROM pg_inherits i WHERE i.inhparent = c.oid)
       || ARRAY(SELECT k.conrelid::int8 FROM pg_constraint k
                WHERE k.confrelid = c.oid AND k.contype = 'f'
                AND (k.confdeltype IN ('c', 'n', 'd') OR k.confupdtype IN ('c', 'n', 'd')))
FROM pg_class c WHERE c.oid::int8 = ANY(%s)
"""


def dry_run_obstacle(conn: psycopg.Connection[Any], tables: Sequence[str]) -> str | None:
    """Why the statements must not run, even in a transaction; None when they may."""
    if not tables:
        return "The tables the statements write are not known"
    try:
        with conn.transaction():  # a savepoint: a name to_regclass cannot read fails alone
            named = conn.execute(
                "SELECT n, to_regclass(n)::oid FROM unnest(%s::text[]) AS n", (list(tables),)
            ).fetchall()
    except psycopg.Error:
        named = []
    if not named or any(oid is None for _, oid in named):
        return "Some of the tables the statements write were not found"
    seen: set[int] = set()
    frontier = {int(oid) for _, oid in named}
    while frontier:  # the tables, their partitions and children, and FK action targets
        seen |= frontier
        found = conn.execute(_REACH_SQL, (sorted(frontier),)).fetchall()
        for name, kind, triggers, rules, _ in found:
            if kind not in ("r", "p"):
                what = {"v": "a view", "m": "a materialized view", "f": "a foreign table"}
                return f"{name} is {what.get(kind, 'not a table')}"
            if triggers:
                return f"{name} has triggers, which may act outside the transaction"
            if rules:
                return f"{name} has rules, which may act outside the transaction"
        frontier = {int(oid) for *_, reached in found for oid in reached} - seen
    return None
