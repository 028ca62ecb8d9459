"""Discovery: introspect a connection, sample values, classify columns, keep admins' choices."""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from sqlglot import exp

from audit.kinds import EventKind
from governance import targets
from governance.crypto import DecryptionError
from governance.engine import pii
from governance.models import CatalogColumn, CatalogTable, Connection, Sensitivity, Source
from governance.services.caller import Caller, record
from governance.targets.base import without_secret

log = logging.getLogger(__name__)

SAMPLE_ROWS = 50
# Schemas that are the connection's default namespace: their tables are named without prefix.
DEFAULT_SCHEMAS = frozenset({"", "public", "main"})


@dataclass(frozen=True)
class DiscoverySummary:
    tables: int
    columns: int
    sensitive: int
    confirmed: int
    unsampled: int  # tables whose values could not be read (names only)


def table_key(connection: Connection, schema: str, name: str) -> str:
    """How statements name the table: bare in the default schema, qualified elsewhere."""
    default = schema in DEFAULT_SCHEMAS or schema == connection.database
    return name.lower() if default else f"{schema}.{name}".lower()


_TEXT_TYPES = ("char", "text", "clob", "string")


def _sample_sql(
    info: targets.TableInfo, dialect: str, default_schema: bool, *, cut: bool = False
) -> str:
    """`SELECT <columns> FROM <table> LIMIT n`, every identifier quoted by sqlglot; ``cut``:
    text columns are read as the prefix of their values."""
    table = exp.table_(info.name, db=None if default_schema else info.schema, quoted=True)
    columns: list[exp.Expr] = []
    for c in info.columns:
        if cut and any(word in c.type.lower() for word in _TEXT_TYPES):
            # at most 4 bytes a character: the prefix is within the bound of one value
            chars = exp.Literal.number(max(256, settings.WARDEN_MAX_CELL_BYTES // 4))
            this = exp.column(c.name, quoted=True)
            prefix = exp.Substring(this=this, start=exp.Literal.number(1), length=chars)
            columns.append(exp.alias_(prefix, c.name, quoted=True))
        else:
            columns.append(exp.column(c.name, quoted=True))
    return exp.select(*columns).from_(table).limit(SAMPLE_ROWS).sql(dialect=dialect)


def _samples(
    session: targets.TargetSession,
    connection: Connection,
    info: targets.TableInfo,
    config: targets.TargetConfig,
) -> dict[str, list[Any]] | None:
    default = info.schema in DEFAULT_SCHEMAS or info.schema == connection.database
    try:
        try:
            sample = _sample_sql(info, connection.dialect, default)
            result = session.execute([sample], read_only=True, max_rows=SAMPLE_ROWS)
        except targets.TargetError as exc:
            if exc.kind != "too_large":
                raise
            # One large text (a long ticket) must not leave the table unsampled, or its
            # free-text columns would go unclassified, and unscanned: read the prefixes of the
            # values. SQLite reads a value whole before cutting it, so the session that cuts
            # may read values as large as a whole run, never more.
            wide = dataclasses.replace(config, max_cell_bytes=config.max_run_bytes)
            with targets.connect(wide) as cutter:
                cut = _sample_sql(info, connection.dialect, default, cut=True)
                result = cutter.execute([cut], read_only=True, max_rows=SAMPLE_ROWS)
    except targets.TargetError as exc:
        log.info("catalog: cannot sample %s.%s: %s", info.schema, info.name, exc.kind)
        return None
    values: dict[str, list[Any]] = defaultdict(list)
    for row in result.rows:
        for column, value in zip(result.columns, row, strict=False):
            values[column.name].append(value)
    return values


def _apply(column: CatalogColumn, proposal: pii.Proposal | None) -> None:
    if column.source == Source.CONFIRMED:
        return  # an admin decided; discovery never overrides them
    if proposal is None:
        column.semantic_type, column.sensitivity = "", Sensitivity.INTERNAL
        column.confidence, column.evidence, column.free_text = 0, "", False
        return
    column.semantic_type = proposal.semantic_type.value
    column.sensitivity = proposal.sensitivity.value
    column.confidence = round(proposal.confidence, 3)
    column.evidence = proposal.evidence[:500]
    column.free_text = proposal.free_text


def catalog_refresh(*, connection: Connection, caller: Caller | None = None) -> DiscoverySummary:
    """Re-read the connection's tables and classify every column. Raises TargetError, after
    keeping it on the connection (the catalog shows it until a discovery succeeds)."""
    password = ""
    try:
        config = connection.target_config()
        password = config.password
        found: list[tuple[targets.TableInfo, dict[str, list[Any]] | None]] = []
        with targets.connect(config) as session:
            for info in session.introspect():
                found.append((info, _samples(session, connection, info, config)))
    except DecryptionError as exc:
        error = targets.TargetError("connect", str(exc), server_text=False)
        _discovery_failed(connection, error, password)
        raise error from None
    except targets.TargetError as exc:
        _discovery_failed(connection, exc, password)
        raise
    with transaction.atomic():
        summary = _store(connection, found)
        Connection.objects.filter(pk=connection.pk).update(
            catalog_version=F("catalog_version") + 1, **_NO_ERROR
        )
        for field, value in _NO_ERROR.items():
            setattr(connection, field, value)
        record(
            EventKind.CATALOG_REFRESHED,
            caller or Caller(user=None, channel="system"),
            connection,
            detail=summary.__dict__,
        )
    return summary


_NO_ERROR: dict[str, Any] = {
    "discovery_error_kind": "",
    "discovery_error": "",
    "discovery_error_at": None,
}


def _discovery_failed(connection: Connection, error: targets.TargetError, password: str) -> None:
    """Keep what went wrong on the connection: its kind, the message (never the password)
    and when. The tables found before stay: masking keeps using them."""
    kept = {
        "discovery_error_kind": error.kind,
        "discovery_error": without_secret(error.message, password)[:2000],
        "discovery_error_at": timezone.now(),
    }
    Connection.objects.filter(pk=connection.pk).update(**kept)
    for field, value in kept.items():
        setattr(connection, field, value)


def _store(
    connection: Connection, found: list[tuple[targets.TableInfo, dict[str, list[Any]] | None]]
) -> DiscoverySummary:
    kept_tables: set[int] = set()
    columns = sensitive = confirmed = unsampled = 0
    for info, values in found:
        table, _ = CatalogTable.objects.update_or_create(
            connection=connection,
            schema=info.schema,
            name=info.name,
            defaults={"kind": info.kind, "refreshed_at": timezone.now()},
        )
        kept_tables.add(table.pk)
        unsampled += values is None
        existing = {c.name: c for c in table.columns.all()}
        for position, col in enumerate(info.columns):
            column = existing.pop(col.name, None) or CatalogColumn(table=table, name=col.name)
            column.type, column.position = col.type, position
            samples = (values or {}).get(col.name, [])
            _apply(column, pii.classify_column(info.name, col.name, col.type, samples))
            column.save()
            columns += 1
            sensitive += bool(column.semantic_type)
            confirmed += column.source == Source.CONFIRMED
        CatalogColumn.objects.filter(pk__in=[c.pk for c in existing.values()]).delete()
    CatalogTable.objects.filter(connection=connection).exclude(pk__in=kept_tables).delete()
    return DiscoverySummary(len(kept_tables), columns, sensitive, confirmed, unsampled)
