"""Masking plans: the catalog and masking rules as the engine's MaskingPolicy, per caller.

A plan is rebuilt only when the connection's catalog version, the masking rules or the caller's
exemptions change.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.utils import timezone

from governance.engine import masking, pii
from governance.models import CatalogColumn, CatalogTable, Connection, MaskingRule, UnmaskExemption
from governance.roles import user_groups
from governance.services.catalog import table_key

_plans: dict[tuple[Any, ...], masking.MaskingPolicy] = {}
MAX_PLANS = 256


def pseudonym_key(connection: Connection) -> bytes:
    """The connection's own 32-byte pseudonym key, derived with HKDF-SHA256 from
    WARDEN_PSEUDONYM_KEY: pseudonyms join within a connection, not across connections, and
    one connection's key says nothing of another's. It never enters a statement's text, a
    stored run or a page; drivers bind it (as its HMAC pads) when a masked statement runs."""
    return _derive(settings.WARDEN_PSEUDONYM_KEY or settings.SECRET_KEY, str(connection.key))


@functools.lru_cache(maxsize=256)
def _derive(secret: str, connection_key: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"warden pseudonyms v2",
        info=f"connection:{connection_key}".encode(),
    ).derive(secret.encode())


def keyed_statements(run: Any) -> frozenset[int]:
    """Indexes of the run's statements whose masks need the pseudonym key bound."""
    statements = (run.decision_detail.get("masking") or {}).get("statements") or []
    return frozenset(i for i, s in enumerate(statements) if s and s.get("keyed"))


def _versioned(cache: dict[tuple[int, int], Any], connection: Connection, load: Any) -> Any:
    """A per-process cache of catalog-derived facts, dropped when the catalog version moves."""
    key = (connection.pk, connection.catalog_version)
    if key not in cache:
        if len(cache) >= MAX_PLANS:
            cache.clear()
        cache[key] = load()
    return cache[key]


_exemptions: dict[tuple[int, int], list[UnmaskExemption]] = {}


def active_exemptions(*, user: Any, connection: Connection) -> list[UnmaskExemption]:
    """The caller's unexpired exemptions on this connection (creating or revoking one moves the
    catalog version, so the cached list is never stale; expiry is checked on every call)."""
    every = _versioned(
        _exemptions,
        connection,
        lambda: list(
            UnmaskExemption.objects.filter(column__table__connection=connection).select_related(
                "column__table", "group"
            )
        ),
    )
    if not every or user is None or not user.is_authenticated:
        return []
    now, groups = timezone.now(), user_groups(user)
    return [
        e
        for e in every
        if e.expires_at > now
        and (e.user_id == user.pk or (e.group is not None and e.group.name in groups))
    ]


ENDED_EXEMPTION = (
    "This result held values unmasked under an exemption that has since ended or been "
    "revoked, so it is no longer shown. Run the statement again to see it as you may now."
)


def exemption_ended(run: Any) -> bool:
    """Whether a stored result may hold values unmasked under an exemption that is gone: the
    run's caller held exemptions when it ran, and one of them has since expired or been
    revoked. Such a result is withheld wherever it would be shown again (the editor, the API,
    MCP): an exemption's end ends the raw values it let through. No query for the usual run,
    which held none."""
    held = ((getattr(run, "decision_detail", None) or {}).get("masking") or {}).get(
        "exemptions"
    ) or []
    if not held:
        return False
    connection = Connection.objects.filter(pk=run.connection_id).first()
    user = getattr(run, "user", None)
    if connection is None or user is None or not user.is_active:
        return True
    # Still the caller's own: not expired, not revoked, and (for a group's) still its member.
    live = {e.pk for e in active_exemptions(user=user, connection=connection)}
    return not set(held) <= live


def masking_policy(
    *, connection: Connection, exemptions: list[UnmaskExemption]
) -> masking.MaskingPolicy:
    # Changing a masking rule moves every connection's catalog version.
    exempt = frozenset(e.column_id for e in exemptions)
    key = (connection.pk, connection.catalog_version, exempt)
    plan = _plans.get(key)
    if plan is None:
        plan = _build(connection, exempt)
        if len(_plans) >= MAX_PLANS:
            _plans.clear()
        _plans[key] = plan
    return plan


def _build(connection: Connection, exempt: frozenset[int]) -> masking.MaskingPolicy:
    strategies = dict(MaskingRule.objects.values_list("semantic_type", "strategy"))
    schema: dict[str, list[tuple[str, str]]] = {}
    rules = set()
    tables = CatalogTable.objects.filter(connection=connection)
    columns = CatalogColumn.objects.filter(table__in=tables).select_related("table")
    for column in columns.order_by("table_id", "position"):
        name = table_key(connection, column.table.schema, column.table.name)
        schema.setdefault(name, []).append((column.name.lower(), column.type or "text"))
        if not column.semantic_type or column.pk in exempt:
            continue
        if column.free_text:
            if connection.scan_free_text:
                rules.add(
                    masking.ColumnRule(
                        table=name,
                        column=column.name.lower(),
                        semantic_type=column.semantic_type,
                        strategy=masking.Strategy.SCAN,
                        rule="free text: scanned",
                        sensitivity=column.sensitivity,
                    )
                )
            continue
        strategy = column.strategy or strategies.get(column.semantic_type, "redact")
        rules.add(
            masking.ColumnRule(
                table=name,
                column=column.name.lower(),
                semantic_type=column.semantic_type,
                strategy=masking.Strategy(strategy),
                rule=f"{column.semantic_type}: {strategy}",
                sensitivity=column.sensitivity,
            )
        )
    return masking.MaskingPolicy(
        schema=tuple((t, tuple(cols)) for t, cols in sorted(schema.items())),
        rules=frozenset(rules),
    )


_free_text: dict[tuple[int, int], frozenset[tuple[str, str]]] = {}


def free_text_sources(connection: Connection) -> frozenset[tuple[str, str]]:
    """(table, column) pairs of free-text columns that the safety net scans on the way out."""

    def load() -> frozenset[tuple[str, str]]:
        columns = CatalogColumn.objects.filter(
            table__connection=connection, free_text=True
        ).select_related("table")
        return frozenset(
            (table_key(connection, c.table.schema, c.table.name), c.name.lower()) for c in columns
        )

    return _versioned(_free_text, connection, load)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class MaskPlan:
    """What masking does to one submitted batch, statement by statement."""

    results: tuple[masking.MaskResult | None, ...]  # None: not a read, or nothing sensitive
    exemptions: tuple[UnmaskExemption, ...] = ()

    @property
    def probe_statements(self) -> frozenset[int]:
        """Statements the inference-probe guardrail holds (see engine.masking.probes)."""
        return frozenset(
            i
            for i, r in enumerate(self.results)
            if r is not None and any(p.holds for p in r.probes)
        )

    @property
    def probe_reasons(self) -> tuple[tuple[int, str], ...]:
        """(statement index, where the held probes' values flow) for the guardrail's reason."""
        return tuple(
            (i, masking.describe_probes(r.probes))
            for i, r in enumerate(self.results)
            if r is not None and any(p.holds for p in r.probes)
        )

    @property
    def held(self) -> list[str]:
        return [r.held for r in self.results if r is not None and r.held]

    def statements(self, original: list[str]) -> list[str]:
        """The SQL that runs: the rewritten statement wherever masking applies."""
        return [
            r.sql if r is not None else sql for r, sql in zip(self.results, original, strict=True)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "statements": [
                None
                if r is None
                else {
                    "sql": r.sql,  # no key in it: bound only when the statement runs
                    "keyed": r.keyed,
                    "columns": [
                        {
                            "name": c.name,
                            "sources": [list(s) for s in c.sources],
                            "masked": c.masked,
                            "strategy": c.strategy,
                            "rule": c.rule,
                            "reason": c.reason,
                        }
                        for c in r.columns
                    ],
                    "conservative": r.conservative,
                    "touches_sensitive": r.touches_sensitive,
                    "held": r.held,
                    "probes": [
                        {
                            "table": p.table,
                            "column": p.column,
                            "kind": p.kind,
                            "where": p.where,
                            "holds": p.holds,
                        }
                        for p in r.probes
                    ],
                }
                for r in self.results
            ],
            "exemptions": [e.pk for e in self.exemptions],
        }


def mask_plan(*, user: Any, connection: Connection, statements: list[dict[str, Any]]) -> MaskPlan:
    """Rewrite every read, and every write's RETURNING list, so sensitive columns are masked
    inside the database."""
    exemptions = active_exemptions(user=user, connection=connection)
    policy = masking_policy(connection=connection, exemptions=exemptions)
    results: list[masking.MaskResult | None] = []
    last = len(statements) - 1
    for index, statement in enumerate(statements):
        sql, category = statement["sql"], statement["category"]
        result = None
        if category == "read" and policy.rules:
            result = masking.mask_select(sql, connection.dialect, policy)
        elif category == "write":  # what RETURNING reveals is masked too
            result = masking.mask_write(sql, connection.dialect, policy)
            if result is None and index == last:  # show a sample of the changed rows
                result = masking.sample_changes(sql, connection.dialect, policy)
            probes = masking.write_probes(sql, connection.dialect, policy)
            if probes:  # what it filters on and what it stores
                base = result or masking.MaskResult(sql, (), True, False, None, ())
                result = replace(base, probes=tuple(sorted({*base.probes, *probes})))
        results.append(result)
    used = _exemptions_used(connection, exemptions, results)
    return MaskPlan(results=tuple(results), exemptions=used)


def _exemptions_used(
    connection: Connection,
    exemptions: list[UnmaskExemption],
    results: list[masking.MaskResult | None],
) -> tuple[UnmaskExemption, ...]:
    sources = {s for r in results if r is not None for c in r.columns for s in c.sources}
    return tuple(
        e
        for e in exemptions
        if (
            table_key(connection, e.column.table.schema, e.column.table.name),
            e.column.name.lower(),
        )
        in sources
    )


Rows = Sequence[Sequence[Any]]


def _lineage(run: Any, statement: int | None, width: int | None) -> dict[str, Any] | None:
    """The masking plan's entry for batch statement ``statement``, if it traced the columns
    that came back (``width`` of them; None: not known yet)."""
    statements = (run.decision_detail.get("masking") or {}).get("statements") or []
    if statement is None or not 0 <= statement < len(statements):
        return None
    entry = statements[statement]
    columns = entry.get("columns") if isinstance(entry, dict) else None
    if not columns or (width is not None and len(columns) != width):
        return None  # not analysed, or not the columns that came back
    return dict(entry)


def masked_columns(run: Any, *, statement: int | None, width: int) -> list[str]:
    """The masked output columns of the statement whose rows a run returned."""
    entry = _lineage(run, statement, width)
    return [c["name"] for c in entry["columns"] if c["masked"]] if entry else []


def safety_net(
    run: Any, *, statement: int | None, width: int | None = None
) -> Callable[[Rows], Rows] | None:
    """A row filter replacing PII found in the free text of the rows batch statement
    ``statement`` returned (``width`` columns), exactly those rows.

    Where the masking plan traced that statement's columns, the filter scans the unmasked
    ones fed by a free-text catalog column (e.g. support_tickets.body). Where it did not (a
    SHOW, a statement the plan did not analyse, columns other than those traced), it fails
    closed and scans every text cell. Off when the connection's `scan_free_text` is off.
    """
    if not run.connection.scan_free_text or statement is None:
        return None
    entry = _lineage(run, statement, width)
    if entry is None:
        return _scrubber(None)
    free_text = free_text_sources(run.connection)
    indexes = [
        i
        for i, column in enumerate(entry["columns"])
        if not column["masked"] and {tuple(s) for s in column["sources"]} & free_text
    ]
    return _scrubber(indexes) if indexes else None


def _scrubber(indexes: list[int] | None) -> Callable[[Rows], Rows]:
    """Replace embedded PII in the text cells at ``indexes`` (None: in every text cell)."""

    def scrub(rows: Rows) -> Rows:
        cleaned = []
        for row in rows:
            values = list(row)
            for i in range(len(values)) if indexes is None else indexes:
                if i < len(values) and isinstance(values[i], str):
                    values[i] = pii.redact_text(values[i])
            cleaned.append(values)
        return cleaned

    return scrub


_facts: dict[tuple[int, int], tuple[frozenset[tuple[str, str]], frozenset[str]]] = {}


def catalog_facts(connection: Connection) -> tuple[frozenset[tuple[str, str]], frozenset[str]]:
    """(sensitive (table, column) pairs, public tables) for the engine's guardrails."""

    def load() -> tuple[frozenset[tuple[str, str]], frozenset[str]]:
        columns = (
            CatalogColumn.objects.filter(table__connection=connection)
            .exclude(semantic_type="")
            .select_related("table")
        )
        sensitive = frozenset(
            (table_key(connection, c.table.schema, c.table.name), c.name.lower()) for c in columns
        )
        public = frozenset(
            table_key(connection, t.schema, t.name)
            for t in CatalogTable.objects.filter(connection=connection, label="public")
        )
        return sensitive, public

    return _versioned(_facts, connection, load)  # type: ignore[no-any-return]


_tables: dict[tuple[int, int], frozenset[str]] = {}


def catalog_tables(connection: Connection) -> frozenset[str]:
    """Bare lower-case names of every table and view in the connection's catalog."""

    def load() -> frozenset[str]:
        names = CatalogTable.objects.filter(connection=connection).values_list("name", flat=True)
        return frozenset(name.lower() for name in names)

    return _versioned(_tables, connection, load)  # type: ignore[no-any-return]


def touches_sensitive(run: Any) -> bool:
    """Whether the run may reach a table with sensitive columns, so its errors may quote a
    protected value and must be told from their code alone (fail closed: any doubt is yes).

    Yes when masking saw a sensitive column; when any statement names (as a word anywhere in
    its text, parsed or not) a table with sensitive columns; or when it names a table missing
    from the catalog (a view or table created since discovery may hold anything)."""
    statements = (run.decision_detail.get("masking") or {}).get("statements") or []
    if any(s and (s.get("touches_sensitive") or s.get("conservative")) for s in statements):
        return True
    sensitive, _ = catalog_facts(run.connection)
    if not sensitive:
        return False
    protected = frozenset(table.lower().rsplit(".", 1)[-1] for table, _ in sensitive)
    if masking.names_in_text(run.sql, run.connection.dialect, protected):
        return True
    known = catalog_tables(run.connection)
    for statement in run.statement_summaries:
        for name in statement.get("tables") or []:
            bare = str(name).lower().replace('"', "").replace("`", "").rsplit(".", 1)[-1]
            if bare not in known:
                return True
    return False
