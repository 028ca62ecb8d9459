"""Dynamic data masking: rewrite a read so sensitive columns are masked inside the database.

``mask_select(sql, dialect, policy)`` parses and qualifies the statement against the
catalogue, traces every output column to its source columns, and wraps the outputs fed by
ruled columns in masking expressions of the target dialect (direct references get the
rule's strategy, anything derived is redacted, ``count()`` is left alone). Statements it
cannot trace are masked conservatively or held. Pure: no Django, no I/O; results cached.
"""

from __future__ import annotations

from .functions import MYSQL_KEY_VARIABLES, keyed, mask_expression, pseudonym, sqlite_functions
from .guards import names_in_text
from .probes import Probe, describe_probes
from .returning import mask_write, sample_changes, write_probes
from .rewrite import clear_mask_cache, mask_select
from .types import (
    RESTRICTED_TYPES,
    ColumnRule,
    MaskingPolicy,
    MaskResult,
    OutputColumn,
    Strategy,
)

__all__ = [
    "MYSQL_KEY_VARIABLES",
    "RESTRICTED_TYPES",
    "ColumnRule",
    "MaskResult",
    "MaskingPolicy",
    "OutputColumn",
    "Probe",
    "Strategy",
    "clear_mask_cache",
    "describe_probes",
    "keyed",
    "mask_expression",
    "mask_select",
    "mask_write",
    "names_in_text",
    "pseudonym",
    "sample_changes",
    "sqlite_functions",
    "write_probes",
]
