"""Which sensitive columns a run reaches, and how: what the trail keeps so that an auditor can
ask "who saw this column, when, masked or not".

Computed from what the engine already decided (the masking plan and the statements), so it
costs no round trip: the list rides in the run's `query.submitted` event, and the sealer files
it in the `ColumnAccess` index once the event is chained (audit/sealer.py).

How a column is reached:
- ``masked``: it came back masked;
- ``unmasked``: it came back as stored, through an unmask exemption (its id is kept);
- ``used``: its values shaped the result without being shown (a filter, an order, a join, a
  count…);
- ``copied``: a write stores its values elsewhere;
- ``written``: a write stores new values in it; ``deleted``: a write removes its rows (column
  ``*`` stands for every sensitive column of the table).
"""

from __future__ import annotations

from typing import Any

from governance import engine
from governance.models import Connection
from governance.services.masking import MaskPlan, catalog_facts

MAX_ENTRIES = 200
WRITES = frozenset({"write"})


def _bare(table: str) -> str:
    return table.lower().replace('"', "").replace("`", "").rsplit(".", 1)[-1]


def sensitive_access(
    connection: Connection, statements: list[dict[str, Any]], plan: MaskPlan | None
) -> list[dict[str, str]]:
    sensitive, _ = catalog_facts(connection)
    if not sensitive:
        return []
    by_bare: dict[str, set[str]] = {}
    for table, column in sensitive:
        by_bare.setdefault(_bare(table), set()).add(column)
    exempt = {
        (_bare(e.column.table.name), e.column.name.lower()): e.pk
        for e in (plan.exemptions if plan else ())
    }
    found: dict[tuple[str, str, str], dict[str, str]] = {}

    def add(table: str, column: str, how: str, **extra: str) -> None:
        table, column = _bare(table), column.lower()
        columns = by_bare.get(table)
        if not columns or (column != "*" and column not in columns):
            return
        found.setdefault(
            (table, column, how), {"table": table, "column": column, "how": how, **extra}
        )

    results = plan.results if plan else ()
    for index, statement in enumerate(statements):
        result = results[index] if index < len(results) else None
        if result is not None:
            for output in result.columns:
                for table, column in output.sources:
                    if output.masked:
                        add(table, column, "masked")
                    elif exemption := exempt.get((_bare(table), column.lower())):
                        add(table, column, "unmasked", exemption=str(exemption))
                    else:  # not shown as such: counted, compared, or a value derived from it
                        add(table, column, "used")
            for probe in result.probes:
                add(probe.table, probe.column, "copied" if probe.kind == "copy" else "used")
        if statement.get("category") in WRITES:
            written, removes = engine.columns_written(statement["sql"], connection.dialect)
            for table, column in written:
                add(table, column, "deleted" if removes else "written")
    return list(found.values())[:MAX_ENTRIES]
