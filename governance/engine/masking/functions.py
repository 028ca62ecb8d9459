"""Masking expressions, per dialect, built as sqlglot trees from parsed templates.

Every template is written in its own dialect around a placeholder column ``warden_value``;
:func:`mask_expression` parses it once (cached) and substitutes the real value expression into
a copy. No key is ever part of the SQL (see *pseudonym* below).

Conventions (all dialects):

* redact     -> ``'****'`` (text), NULL included: whether a value is set is information too
               (NULLIF/CASE tricks would otherwise leak one bit per column). Written as
               ``COALESCE('****', value)``: the database still resolves the names in ``value``
               (a misspelt column is an error, not a column of stars) but never evaluates it.
* partial    -> e-mail keeps the first letter and the domain (``a***@example.com``); anything
               else keeps the last four characters (``***-***-1234``); values shorter than 8
               characters, or e-mails without ``@``, are fully redacted.
* pseudonym  -> ``'anon_' || first 16 hex of HMAC-SHA256(key, value-as-text)``: the same
               construction on every engine, so pseudonyms join within and across engines.
               The key never appears in the statement: HMAC is computed from its inner and
               outer pads (``sha256(opad || sha256(ipad || value))``), which the driver sends
               separately: as bind parameters ``$1`` (ipad) and ``$2`` (opad) on PostgreSQL, as
               the session variables ``@warden_pk_i`` / ``@warden_pk_o`` set just before the
               statement on MySQL (PyMySQL cannot bind server-side), and through the
               registered function ``warden_pseudonym`` on SQLite. The engine refuses user
               statements that name ``$n`` parameters or ``@warden…`` variables.
* null       -> NULL, as ``CASE WHEN FALSE THEN value END`` (names resolved, never evaluated).
* generalize -> dates/timestamps: the year (integer); numbers: a one-significant-digit range
               as text (``54321`` -> ``'50000-59999'``); other types: redact.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable
from functools import lru_cache

import sqlglot
from sqlglot import exp

from .types import Strategy

PLACEHOLDER = "warden_value"
#: MySQL session variables holding the key's HMAC pads, set by the driver (see pseudonym).
MYSQL_KEY_VARIABLES = ("warden_pk_i", "warden_pk_o")

_TEMPLATES: dict[str, dict[str, str]] = {
    "postgres": {
        "redact": "COALESCE(CAST('****' AS TEXT), CAST(warden_value AS TEXT))",
        "null": "CASE WHEN FALSE THEN CAST(warden_value AS TEXT) END",
        "tail": (
            "CASE WHEN warden_value IS NULL THEN NULL"
            " WHEN LENGTH(CAST(warden_value AS TEXT)) < 8 THEN CAST('****' AS TEXT)"
            " ELSE '***-***-' || RIGHT(CAST(warden_value AS TEXT), 4) END"
        ),
        "email": (
            "CASE WHEN warden_value IS NULL THEN NULL"
            " WHEN STRPOS(CAST(warden_value AS TEXT), '@') > 1"
            " THEN LEFT(CAST(warden_value AS TEXT), 1) || '***@'"
            " || SPLIT_PART(CAST(warden_value AS TEXT), '@', 2)"
            " ELSE CAST('****' AS TEXT) END"
        ),
        "pseudonym": (
            "'anon_' || SUBSTR(ENCODE(SHA256(CAST($2 AS BYTEA) || SHA256(CAST($1 AS BYTEA)"
            " || CONVERT_TO(CAST(warden_value AS TEXT), 'UTF8'))), 'hex'), 1, 16)"
        ),
        "year": "CAST(EXTRACT(YEAR FROM warden_value) AS INTEGER)",
        "bucket": (
            "CASE WHEN warden_value IS NULL THEN NULL"
            " WHEN ABS(CAST(warden_value AS DOUBLE PRECISION)) < 10 THEN CAST('0-9' AS TEXT)"
            " ELSE CAST(CAST(FLOOR(CAST(warden_value AS DOUBLE PRECISION)"
            " / POWER(10, FLOOR(LOG(ABS(CAST(warden_value AS DOUBLE PRECISION))))))"
            " * POWER(10, FLOOR(LOG(ABS(CAST(warden_value AS DOUBLE PRECISION)))))"
            " AS BIGINT) AS TEXT) || '-' || CAST(CAST((FLOOR(CAST(warden_value AS DOUBLE"
            " PRECISION) / POWER(10, FLOOR(LOG(ABS(CAST(warden_value AS DOUBLE PRECISION))))))"
            " + 1) * POWER(10, FLOOR(LOG(ABS(CAST(warden_value AS DOUBLE PRECISION))))) - 1"
            " AS BIGINT) AS TEXT) END"
        ),
    },
    "mysql": {
        "redact": "COALESCE('****', CAST(warden_value AS CHAR))",
        "null": "CASE WHEN FALSE THEN CAST(warden_value AS CHAR) END",
        "tail": (
            "CASE WHEN warden_value IS NULL THEN NULL"
            " WHEN CHAR_LENGTH(CAST(warden_value AS CHAR)) < 8 THEN '****'"
            " ELSE CONCAT('***-***-', RIGHT(CAST(warden_value AS CHAR), 4)) END"
        ),
        "email": (
            "CASE WHEN warden_value IS NULL THEN NULL"
            " WHEN LOCATE('@', CAST(warden_value AS CHAR)) > 1"
            " THEN CONCAT(LEFT(CAST(warden_value AS CHAR), 1), '***@',"
            " SUBSTRING(CAST(warden_value AS CHAR), LOCATE('@', CAST(warden_value AS CHAR)) + 1))"
            " ELSE '****' END"
        ),
        "pseudonym": (
            "CONCAT('anon_', LEFT(SHA2(CONCAT(@warden_pk_o, UNHEX(SHA2(CONCAT(@warden_pk_i,"
            " CAST(warden_value AS CHAR)), 256))), 256), 16))"
        ),
        "year": "YEAR(warden_value)",
        "bucket": (
            "CASE WHEN warden_value IS NULL THEN NULL WHEN ABS(warden_value) < 10 THEN '0-9'"
            " ELSE CONCAT(CAST(FLOOR(warden_value / POW(10, FLOOR(LOG10(ABS(warden_value)))))"
            " * POW(10, FLOOR(LOG10(ABS(warden_value)))) AS SIGNED), '-',"
            " CAST((FLOOR(warden_value / POW(10, FLOOR(LOG10(ABS(warden_value))))) + 1)"
            " * POW(10, FLOOR(LOG10(ABS(warden_value)))) - 1 AS SIGNED)) END"
        ),
    },
    "sqlite": {
        "redact": "COALESCE('****', warden_value)",
        "null": "CASE WHEN FALSE THEN warden_value END",
        "tail": (
            "CASE WHEN warden_value IS NULL THEN NULL"
            " WHEN LENGTH(CAST(warden_value AS TEXT)) < 8 THEN '****'"
            " ELSE '***-***-' || SUBSTR(CAST(warden_value AS TEXT), -4) END"
        ),
        "email": (
            "CASE WHEN warden_value IS NULL THEN NULL"
            " WHEN INSTR(CAST(warden_value AS TEXT), '@') > 1"
            " THEN SUBSTR(CAST(warden_value AS TEXT), 1, 1) || '***@'"
            " || SUBSTR(CAST(warden_value AS TEXT), INSTR(CAST(warden_value AS TEXT), '@') + 1)"
            " ELSE '****' END"
        ),
        "pseudonym": "warden_pseudonym(warden_value)",
        "year": "CAST(STRFTIME('%Y', warden_value) AS INTEGER)",
        "bucket": "warden_bucket(warden_value)",
    },
}

_TAIL_TYPES = frozenset(
    {"phone", "national_id", "credit_card", "iban", "ip_address", "secret", "financial"}
)
_DATE_WORDS = ("date", "time")
_NUMBER_WORDS = ("int", "numeric", "decimal", "real", "double", "float", "money", "number")


def normalize_dialect(dialect: str) -> str:
    lowered = (dialect or "").lower()
    if lowered in ("postgres", "postgresql"):
        return "postgres"
    if lowered in ("mysql", "mariadb"):
        return "mysql"
    if lowered == "sqlite":
        return "sqlite"
    raise ValueError(f"unsupported dialect {dialect!r}; expected postgres, mysql or sqlite")


@lru_cache(maxsize=64)
def _template(dialect: str, name: str) -> exp.Expr:
    return sqlglot.parse_one(_TEMPLATES[dialect][name], read=dialect)


def value_kind(value: exp.Expr, semantic_type: str) -> str:
    """ "date", "number" or "text", from the expression's annotated type or the semantic type."""
    dtype = value.type if isinstance(value, exp.Expression) else None
    if dtype is not None and not dtype.is_type(exp.DataType.Type.UNKNOWN):
        text = dtype.sql().lower()
        if any(word in text for word in _DATE_WORDS):
            return "date"
        if any(word in text for word in _NUMBER_WORDS):
            return "number"
        return "text"
    if semantic_type == "date_of_birth":
        return "date"
    if semantic_type == "financial":
        return "number"
    return "text"


def _template_name(value: exp.Expr, semantic_type: str, strategy: Strategy) -> str:
    if strategy is Strategy.NULL:
        return "null"
    if strategy is Strategy.PSEUDONYM:
        return "pseudonym"
    if strategy is Strategy.PARTIAL:
        kind = value_kind(value, semantic_type)
        if semantic_type == "email":
            return "email"
        if kind == "date":
            return "year"
        return "tail" if semantic_type in _TAIL_TYPES or kind != "number" else "bucket"
    if strategy is Strategy.GENERALIZE:
        kind = value_kind(value, semantic_type)
        return {"date": "year", "number": "bucket"}.get(kind, "redact")
    return "redact"


def mask_expression(
    value: exp.Expr, semantic_type: str, strategy: Strategy, dialect: str
) -> exp.Expr:
    """``value`` wrapped in the masking expression for ``strategy`` in ``dialect``."""
    dialect = normalize_dialect(dialect)
    template = _template(dialect, _template_name(value, semantic_type, Strategy(strategy)))

    def substitute(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name == PLACEHOLDER:
            return value.copy()
        return node

    return template.copy().transform(substitute)


def keyed(strategy: Strategy | str | None) -> bool:
    """Whether a mask of this strategy needs the pseudonym key at execution."""
    return strategy == Strategy.PSEUDONYM


def pseudonym(value: object, key: bytes) -> str | None:
    """The pseudonym of ``value`` exactly as the SQL expressions compute it."""
    if value is None:
        return None
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    digest = hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
    return "anon_" + digest[:16]


def bucket(value: object) -> str | None:
    """One-significant-digit range of a number, as text (``54321`` -> ``'50000-59999'``)."""
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "****"
    if math.isnan(number) or math.isinf(number):
        return "****"
    if abs(number) < 10:
        return "0-9"
    width = 10 ** math.floor(math.log10(abs(number)))
    low = math.floor(number / width) * width
    return f"{int(low)}-{int(low + width - 1)}"


def sqlite_functions(key: bytes) -> dict[str, tuple[int, Callable[..., str | int | float | None]]]:
    """Deterministic functions to register on a SQLite connection before running masked SQL."""

    def warden_pseudonym(value: object) -> str | None:
        return pseudonym(value, key)

    return {"warden_pseudonym": (1, warden_pseudonym), "warden_bucket": (1, bucket)}
