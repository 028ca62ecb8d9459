"""What a failed run says: one place that decides which words of a target error leave Warden.

A database's error message can quote the values a statement touched, and a statement can steer
which (``CAST('"' || ssn AS int)`` fails with the SSN in the message). So for a run that
touches a table with sensitive columns, every channel (the editor, the CLI and its JSON, the
audit trail, the approver's impact preview, exports) shows a sentence built from the error's
code and position only (``targets.errors.coded_sentence``), never the server's text. Runs on
tables without sensitive columns keep the server's message: people need it to fix their SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from governance import targets
from governance.crypto import DecryptionError
from governance.roles import has_role
from governance.services.masking import touches_sensitive
from governance.targets.errors import code_sentence, coded_sentence

WITHHELD = (
    "The database's own message is not shown because the statement touches a table with"
    " sensitive columns."
)
CONNECT_FAILED = "Could not connect to the target database. An administrator can see why."
CANCELLED = "Cancelled on the target database."
DECRYPTION_FAILED = "The connection's stored secret cannot be used."
LIMIT_VARIABLES = {
    targets.base.CELL_LIMIT: "WARDEN_MAX_CELL_BYTES",
    targets.base.RUN_LIMIT: "WARDEN_MAX_RUN_BYTES",
}


@dataclass(frozen=True)
class PublicError:
    """A run's failure in words: what callers see, and what the audit trail keeps."""

    shown: str
    kind: str
    audit: dict[str, Any]  # error_kind, target_error and, for a database error, its code


def public_error(
    run: Any, error: targets.TargetError | DecryptionError, *, preview_ms: int | None = None
) -> PublicError:
    """The words for ``error``, raised while running ``run``'s statements, or while
    previewing them within ``preview_ms``."""
    if isinstance(error, DecryptionError):
        return PublicError(
            DECRYPTION_FAILED, "connect", {"error_kind": "connect", "target_error": str(error)}
        )
    connection = run.connection
    engine = connection.engine
    statements = [s for s in run.statements if isinstance(s, str)]
    if error.server_text and touches_sensitive(run):
        # The SQL that ran holds no key (it is bound as a parameter): any token may be shown.
        text = coded_sentence(error, statements, engine=engine)
        recorded, shown = text, f"{text} {WITHHELD}"
    else:
        recorded = shown = _as_sent(error, statements)
        if error.kind == "too_large" and (variable := LIMIT_VARIABLES.get(error.code or "")):
            shown = f"{shown} An administrator can raise {variable}."
    if error.kind in ("connect", "auth") and not has_role(run.user, "admin"):
        shown = CONNECT_FAILED  # hosts, users, auth failures are for administrators only
    elif error.kind == "timeout" and preview_ms is not None:
        shown = f"The preview ran longer than the {preview_ms / 1000:g} s it may take."
    elif error.kind == "timeout":
        timeout_s = connection.statement_timeout_ms / 1000
        shown = f"The statement ran longer than this connection's {timeout_s:g} s timeout."
    elif error.kind == "cancelled":
        shown = CANCELLED
    audit: dict[str, Any] = {"error_kind": error.kind, "target_error": recorded}
    _, code = code_sentence(engine, error.code)
    if code is not None:
        audit["error_code"] = code
    if error.statement is not None:
        audit["error_statement"] = error.statement + 1
    return PublicError(shown, error.kind, audit)


def _as_sent(error: targets.TargetError, statements: list[str]) -> str:
    """The error's own message, naming the statement when the batch has several."""
    if error.statement is not None and len(statements) > 1:
        return f"Statement {error.statement + 1}: {error.message}"
    return error.message
