"""One plain sentence per statement, for people deciding whether it may run."""

from __future__ import annotations

from .types import Category
from .verdict import Verdict

_TEMPLATES: dict[Category, str] = {
    Category.READ: "Reads {tables}.",
    Category.WRITE: "Changes data in {written} ({kind}).",
    Category.DDL: "Changes the database structure ({kind}{on}).",
    Category.PRIVILEGE: "Changes who may do what in the database ({kind}).",
    Category.SESSION: "Changes settings or state of the database session ({kind}).",
    Category.CODE: "Runs or defines code inside the database ({kind}).",
    Category.FILE: "Reads or writes files on the database server ({kind}).",
    Category.ADMIN: "Performs a database administration task ({kind}).",
    Category.TRANSACTION: "Controls a transaction ({kind}); Warden manages transactions itself.",
    Category.UNKNOWN: (
        "Warden does not recognise this statement ({kind}), so it cannot show that it is safe."
    ),
}


def _list(tables: tuple[str, ...]) -> str:
    if not tables:
        return "no table"
    if len(tables) == 1:
        return tables[0]
    return ", ".join(tables[:-1]) + " and " + tables[-1]


def _write_sentence(verdict: Verdict) -> str | None:
    target = _list(verdict.written_tables)
    unfiltered = "unfiltered_write" in verdict.flags
    if verdict.kind == "DELETE":
        if unfiltered:
            return f"Deletes rows from {target} with no WHERE clause that filters them."
        return f"Deletes rows from {target}."
    if verdict.kind == "UPDATE":
        if unfiltered:
            return f"Updates every row of {target}: no WHERE clause filters them."
        return f"Updates rows in {target}."
    if verdict.kind in {"INSERT", "REPLACE"}:
        upsert = " or updates existing ones" if "upsert" in verdict.flags else ""
        return f"Inserts rows into {target}{upsert}."
    if "select_into" in verdict.flags:
        return f"Creates table {target} from the result of a query (SELECT INTO)."
    if "writable_cte" in verdict.flags:
        return f"Changes data in {target} from inside a query (a data-modifying WITH clause)."
    if "locking_read" in verdict.flags:
        return f"Reads {_list(verdict.tables)} and locks the rows it reads (FOR UPDATE/SHARE)."
    return None


def _ddl_sentence(verdict: Verdict) -> str | None:
    target = _list(verdict.written_tables)
    if "drop" in verdict.flags:
        return f"Permanently removes {target if verdict.written_tables else 'an object'} "\
            f"({verdict.kind})."  # fmt: skip
    if "truncate" in verdict.flags:
        return f"Removes every row from {target} (TRUNCATE)."
    return None


def describe(verdict: Verdict) -> str:
    """The explanation for a classified statement.

    >>> from .types import Risk
    >>> describe(Verdict(Category.READ, Risk.LOW, "SELECT", tables=("orders",)))
    'Reads orders.'
    """
    if "executable_comment" in verdict.flags or verdict.note:
        return verdict.note or "Contains hidden SQL."
    sentence: str | None = None
    if "explain" in verdict.flags:
        sentence = f"Shows the query plan for {_list(verdict.tables)} without running the query."
    elif "explain_analyze" in verdict.flags:
        sentence = (
            "Runs the statement to measure it (EXPLAIN ANALYZE), so it has the effects of "
            f"{verdict.kind.removeprefix('EXPLAIN ANALYZE ').removeprefix('ANALYZE ')}."
        )
    elif verdict.category == Category.WRITE:
        sentence = _write_sentence(verdict)
    elif verdict.category == Category.DDL:
        sentence = _ddl_sentence(verdict)
    elif verdict.category == Category.READ and not verdict.tables:
        sentence = "Reads data without touching any table."
    if sentence is not None:
        return sentence
    tables = _list(verdict.tables)
    on = f" on {_list(verdict.written_tables)}" if verdict.written_tables else ""
    written = _list(verdict.written_tables or verdict.tables)
    return _TEMPLATES[verdict.category].format(
        tables=tables, kind=verdict.kind, on=on, written=written
    )
