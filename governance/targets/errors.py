"""Error sentences built from an error's code, never from the server's text (pure Python).

A server's error message can quote the values a statement touched ("invalid input syntax for
type integer: \"123-45-6789\""), and a statement can steer which values it quotes. So where a
statement touches sensitive data, callers show ``coded_sentence(error, ...)`` instead: a fixed
sentence chosen by the error's code (PostgreSQL SQLSTATE, MySQL/MariaDB error number, SQLite
result code), plus where the error is (statement, line, column) and the token at that place,
cut from the statement text Warden sent, which is the caller's own SQL, not data. Nothing of
the server's message is read here: the function does not even look at ``error.message``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .base import TargetError

TOKEN_CHARS = 40  # the longest token quoted after "near"

# -- PostgreSQL: SQLSTATE -> sentence, then the class (first two characters) -> sentence.
PG_SENTENCES: dict[str, str] = {
    "21000": "a subquery used as a value returned more than one row",
    "22001": "a text value is too long for its type",
    "22003": "a number is out of range for its type",
    "22004": "a null value is not allowed here",
    "22007": "a date or time value has an invalid format",
    "22008": "a date or time value is out of range",
    "22011": "a substring position or length is invalid",
    "22012": "division by zero",
    "22018": "a value cannot be cast to the requested type",
    "22019": "an escape character is invalid",
    "22021": "a character is not valid in the database encoding",
    "22023": "a function was given an argument value it does not accept",
    "22025": "an escape sequence is invalid",
    "2202E": "an array subscript is out of range",
    "2201B": "a regular expression is invalid",
    "2201E": "a logarithm's argument is invalid",
    "2201F": "a power function's argument is invalid",
    "2201G": "a width_bucket argument is invalid",
    "22026": "a string has the wrong length for its type",
    "22027": "a trim argument is invalid",
    "22P01": "a floating-point operation failed",
    "22P02": "a value is not valid input for its type (for example text cast to a number)",
    "22P03": "a binary value has an invalid format",
    "22P04": "a COPY value has an invalid format",
    "22P05": "a character cannot be converted to the database encoding",
    "22P06": "a backslash in a string is not allowed here",
    "22030": "a JSON object has a duplicate key",
    "22032": "a JSON text is not valid",
    "22033": "a JSON subscript is invalid",
    "22034": "a JSON path returned more than one item",
    "22035": "a JSON path returned no item",
    "22036": "a JSON item is not a number",
    "22037": "a JSON object has duplicate keys",
    "22038": "a single JSON item is required",
    "22039": "a JSON array was not found",
    "2203A": "a JSON member was not found",
    "2203B": "a JSON number was not found",
    "2203C": "a JSON object was not found",
    "2203D": "a JSON value has too many array elements",
    "2203E": "a JSON value has too many object members",
    "2203F": "a JSON scalar is required",
    "2203G": "a JSON item cannot be cast to the target type",
    "23000": "the statement would break an integrity constraint",
    "23001": "the statement would break a RESTRICT rule",
    "23502": "a column that must have a value would be null (not-null constraint)",
    "23503": "the statement would break a foreign key (a row it references is missing or still"
    " referenced)",
    "23505": "a value would duplicate one that must be unique (unique constraint)",
    "23514": "a row would break a check constraint",
    "23P01": "a row would break an exclusion constraint",
    "24000": "a cursor is in the wrong state",
    "25001": "a transaction is already in progress",
    "25006": "the statement tried to write in a read-only transaction",
    "25P02": "an earlier error aborted the transaction",
    "25P03": "an idle transaction timed out",
    "28000": "the target database refused the account",
    "28P01": "the target database refused the password",
    "2BP01": "other objects depend on the object",
    "34000": "a cursor name is unknown",
    "3D000": "the database does not exist",
    "3F000": "the schema does not exist",
    "40001": "the transaction could not be serialized with a concurrent one; run it again",
    "40P01": "a deadlock was detected; run it again",
    "42501": "the database account lacks a privilege the statement needs (permission denied)",
    "42601": "syntax error",
    "42602": "a name is invalid",
    "42622": "a name is too long",
    "42701": "a column name is duplicated",
    "42702": "a column reference is ambiguous",
    "42703": "a column does not exist",
    "42704": "an object (type, collation, setting...) does not exist",
    "42710": "an object with that name already exists",
    "42712": "a table alias is duplicated",
    "42723": "a function with that signature already exists",
    "42725": "a function call is ambiguous",
    "42803": "a column must appear in GROUP BY or be used in an aggregate",
    "42804": "an expression has the wrong data type",
    "42809": "an object is of the wrong kind for this statement",
    "42830": "a foreign key is invalid",
    "42846": "a value cannot be cast to the requested type",
    "42883": "no function or operator matches the name and argument types",
    "42939": "a name is reserved",
    "42P01": "a table or view does not exist",
    "42P02": "a parameter does not exist",
    "42P07": "a table with that name already exists",
    "42P09": "a table or column reference is ambiguous",
    "42P10": "a column reference is invalid",
    "42P18": "a data type could not be determined",
    "42P19": "a recursive query is invalid",
    "42P20": "a window function is used where it is not allowed",
    "44000": "a row does not satisfy a view's CHECK OPTION",
    "53100": "the target database ran out of disk space",
    "53200": "the target database ran out of memory",
    "53300": "the target database has too many connections",
    "53400": "a configured limit of the target database was reached",
    "54000": "the statement exceeds a limit of the target database (program limit)",
    "54001": "the statement is too complex",
    "54011": "the statement has too many columns",
    "54023": "a function call has too many arguments",
    "55000": "an object is not in the required state",
    "55006": "an object is in use",
    "55P03": "a lock could not be taken",
    "57014": "the statement was cancelled (statement timeout or cancel request)",
    "57P01": "the target database is shutting down",
    "57P02": "the target database restarted",
    "57P03": "the target database is not accepting connections now",
    "58P01": "a file the statement needs does not exist",
    "P0001": "a database function raised an error",
    "P0002": "a database function found no row",
    "P0003": "a database function found more than one row",
    "P0004": "a database assertion failed",
    "XX000": "the target database reported an internal error",
    "XX001": "the target database found corrupted data",
    "XX002": "the target database found a corrupted index",
}
PG_CLASSES: dict[str, str] = {
    "01": "the statement raised a warning",
    "02": "no data",
    "03": "the statement is not complete",
    "08": "the connection to the target database failed",
    "09": "a trigger action failed",
    "0A": "the statement uses a feature the target database does not support",
    "0B": "a transaction cannot start here",
    "0F": "a locator is invalid",
    "0L": "a grantor is invalid",
    "0P": "a role specification is invalid",
    "0Z": "a diagnostics request failed",
    "20": "a CASE found no matching branch",
    "21": "a row or subquery returned the wrong number of values",
    "22": "a value is invalid for the operation (data exception)",
    "23": "the statement would break an integrity constraint",
    "24": "a cursor is in the wrong state",
    "25": "the transaction is in the wrong state for the statement",
    "26": "a prepared statement name is invalid",
    "27": "a trigger changed data in a way that is not allowed",
    "28": "the target database refused the account",
    "2B": "other privileges depend on the object",
    "2D": "a transaction ended where it may not",
    "2F": "a database function failed",
    "34": "a cursor name is invalid",
    "38": "an external routine failed",
    "39": "an external routine could not be called",
    "3B": "a savepoint is invalid",
    "3D": "the database name is invalid",
    "3F": "the schema name is invalid",
    "40": "the transaction was rolled back",
    "42": "the statement is not valid SQL, or names something that does not exist or may not"
    " be used",
    "44": "a row does not satisfy a view's CHECK OPTION",
    "53": "the target database lacks a resource (memory, disk, connections)",
    "54": "the statement exceeds a limit of the target database",
    "55": "an object is not in the required state",
    "57": "an operator or the server interrupted the statement",
    "58": "the target database had a system error",
    "72": "a snapshot is too old",
    "F0": "the target database's configuration file has an error",
    "HV": "a foreign data wrapper failed",
    "P0": "a database function raised an error",
    "XX": "the target database reported an internal error",
}

# -- MySQL / MariaDB: error number -> sentence (no classes: numbers are not grouped).
MYSQL_SENTENCES: dict[str, str] = {
    "1022": "a key would be duplicated",
    "1040": "the target database has too many connections",
    "1044": "the database account may not use this database",
    "1045": "the target database refused the account",
    "1046": "no database is selected",
    "1048": "a column that must have a value would be null",
    "1049": "the database does not exist",
    "1050": "a table with that name already exists",
    "1051": "a table does not exist",
    "1052": "a column reference is ambiguous",
    "1054": "a column does not exist",
    "1055": "a column must appear in GROUP BY or be used in an aggregate",
    "1060": "a column name is duplicated",
    "1062": "a value would duplicate one that must be unique (unique key)",
    "1064": "syntax error",
    "1066": "a table alias is duplicated",
    "1093": "the table being changed is also read in a subquery",
    "1105": "the target database reported an unknown error",
    "1109": "a table is unknown in this statement",
    "1111": "an aggregate function is used where it is not allowed",
    "1136": "the number of values does not match the number of columns",
    "1138": "a null value is used where it is not allowed",
    "1139": "a regular expression is invalid",
    "1142": "the database account lacks a privilege on a table the statement uses",
    "1143": "the database account lacks a privilege on a column the statement uses",
    "1146": "a table or view does not exist",
    "1149": "syntax error",
    "1172": "a result has more than one row where one is expected",
    "1205": "a lock wait timed out; run it again",
    "1207": "the statement tried to write while the tables are read-locked",
    "1213": "a deadlock was detected; run it again",
    "1216": "the statement would break a foreign key (a referenced row is missing)",
    "1217": "the statement would break a foreign key (the row is still referenced)",
    "1222": "the parts of a UNION have different numbers of columns",
    "1227": "the database account lacks a privilege the statement needs",
    "1235": "the statement uses a feature this server version does not support",
    "1241": "an operand has the wrong number of columns",
    "1242": "a subquery used as a value returned more than one row",
    "1264": "a number is out of range for its column",
    "1265": "a value was cut to fit its column",
    "1267": "text values with incompatible collations are combined",
    "1270": "text values with incompatible collations are combined",
    "1271": "text values with incompatible collations are combined",
    "1288": "the table cannot be changed by this statement",
    "1290": "the target database is running read-only",
    "1292": "a value is not valid for its type (for example text as a number or a date)",
    "1301": "a result is larger than the server's max_allowed_packet",
    "1305": "a function or procedure does not exist",
    "1317": "the statement was interrupted",
    "1364": "a column without a default value was given none",
    "1365": "division by zero",
    "1366": "a value is not valid for its column",
    "1367": "a value is not valid",
    "1370": "the database account may not run a routine the statement calls",
    "1406": "a value is too long for its column",
    "1411": "a function was given a value it does not accept",
    "1416": "a value is not valid geometry data",
    "1451": "the statement would break a foreign key (the row is still referenced)",
    "1452": "the statement would break a foreign key (a referenced row is missing)",
    "1582": "a built-in function was called with the wrong number of arguments",
    "1583": "a built-in function was called with invalid arguments",
    "1630": "a function does not exist",
    "1644": "a database routine signalled an error",
    "1690": "a number is out of range for its type",
    "1792": "the statement tried to write in a read-only transaction",
    "1919": "a dynamic column value has an invalid format",
    "1958": "a base64 value is not valid",
    "1969": "the statement ran past its time limit",
    "3024": "the statement ran past its time limit",
    "3037": "a value is not valid geometry data",
    "3140": "a JSON text is not valid",
    "3141": "a JSON text is not valid",
    "3143": "a JSON path is not valid",
    "3146": "a JSON function was given an argument of the wrong type",
    "3685": "a regular expression argument is not valid",
    "3819": "a row would break a check constraint",
    "4025": "a row would break a check constraint",
    "4036": "a JSON text contains a character that is not allowed",
    "4037": "a JSON text ends unexpectedly",
    "4038": "a JSON text is not valid",
    "4039": "a JSON text has an invalid escape",
    "4040": "a JSON text is nested too deeply",
    "4041": "a JSON path ends unexpectedly",
    "4042": "a JSON path is not valid",
    "4043": "a JSON path is nested too deeply",
    "4044": "a JSON path uses a wildcard where none is allowed",
    "4048": "a GeoJSON value is not valid",
    "4078": "an operation was given arguments of data types it does not accept",
    "4079": "an operation was given an argument of a data type it does not accept",
    "2003": "Warden could not connect to the target database",
    "2005": "the target database's host name is unknown",
    "2006": "the connection to the target database was lost",
    "2013": "the connection to the target database was lost during the statement",
}

# -- SQLite: (extended) result code names -> sentence; an extended code falls back to its
# primary code (SQLITE_CONSTRAINT_UNIQUE -> SQLITE_CONSTRAINT).
SQLITE_SENTENCES: dict[str, str] = {
    "SQLITE_ERROR": "SQL error: a syntax error, an unknown table, column or function, or an"
    " argument a function does not accept (such as malformed JSON)",
    "SQLITE_INTERNAL": "SQLite reported an internal error",
    "SQLITE_PERM": "SQLite was denied access to the database file",
    "SQLITE_ABORT": "the statement was aborted",
    "SQLITE_BUSY": "the database file is busy (locked by another connection)",
    "SQLITE_LOCKED": "a table is locked",
    "SQLITE_NOMEM": "SQLite ran out of memory",
    "SQLITE_READONLY": "the statement tried to write to a read-only database",
    "SQLITE_INTERRUPT": "the statement was interrupted",
    "SQLITE_IOERR": "reading or writing the database file failed",
    "SQLITE_CORRUPT": "the database file is corrupted",
    "SQLITE_FULL": "the disk holding the database is full",
    "SQLITE_CANTOPEN": "the database file cannot be opened",
    "SQLITE_SCHEMA": "the schema changed while the statement was prepared",
    "SQLITE_TOOBIG": "a value or row is larger than the allowed size",
    "SQLITE_CONSTRAINT": "the statement would break a constraint",
    "SQLITE_CONSTRAINT_CHECK": "a row would break a check constraint",
    "SQLITE_CONSTRAINT_DATATYPE": "a value has the wrong type for its column (STRICT table)",
    "SQLITE_CONSTRAINT_FOREIGNKEY": "the statement would break a foreign key",
    "SQLITE_CONSTRAINT_NOTNULL": "a column that must have a value would be null",
    "SQLITE_CONSTRAINT_PRIMARYKEY": "a primary key value would be duplicated",
    "SQLITE_CONSTRAINT_TRIGGER": "a trigger refused the change",
    "SQLITE_CONSTRAINT_UNIQUE": "a value would duplicate one that must be unique",
    "SQLITE_MISMATCH": "a value has the wrong data type",
    "SQLITE_MISUSE": "the statement was used in a way SQLite does not allow",
    "SQLITE_AUTH": "the statement is not allowed on this connection",
    "SQLITE_RANGE": "a parameter index is out of range",
    "SQLITE_NOTADB": "the file is not an SQLite database",
}

ENGINE_LABELS = {"postgresql": "SQLSTATE", "mysql": "MariaDB/MySQL error", "sqlite": ""}
_CODE_SHAPES = {
    "postgresql": re.compile(r"[0-9A-Z]{5}"),
    "mysql": re.compile(r"[0-9]{1,5}"),
    "sqlite": re.compile(r"SQLITE_[A-Z_]{1,40}"),
}
# Errors Warden itself reports (no code), by kind.
_KIND_SENTENCES = {
    "connect": "the connection to the target database failed",
    "auth": "the target database refused the account",
    "timeout": "the statement ran past its time limit",
    "cancelled": "the statement was cancelled",
    "readonly": "the statement tried to write in a read-only transaction",
    "too_large": "the result is larger than Warden fetches",
    "execution": "the statement failed",
}


def code_sentence(engine: str, code: str | None) -> tuple[str, str | None]:
    """The sentence for ``code`` and the code as shown (None when it is not a valid code)."""
    shape = _CODE_SHAPES.get(engine)
    if code is None or shape is None or not shape.fullmatch(code):
        return "", None
    if engine == "postgresql":
        sentence = PG_SENTENCES.get(code) or PG_CLASSES.get(code[:2], "")
    elif engine == "mysql":
        sentence = MYSQL_SENTENCES.get(code.lstrip("0") or "0", "")
    else:
        sentence = SQLITE_SENTENCES.get(code) or SQLITE_SENTENCES.get(_primary(code), "")
    return sentence, code


def _primary(name: str) -> str:
    parts = name.split("_")
    return "_".join(parts[:2])


def coded_sentence(
    error: TargetError,
    statements: Sequence[str],
    *,
    engine: str,
    hidden: Sequence[str] = (),
) -> str:
    """A sentence about ``error`` made of its code and position only.

    ``statements`` are the texts Warden sent (the batch, as run); the token near the error
    is cut from them. ``hidden`` are texts never to quote, even though they are in the
    statement (the pseudonym key literal).

    >>> from governance.targets.base import TargetError
    >>> error = TargetError("execution", "whatever", code="42703", statement=0, position=8)
    >>> coded_sentence(error, ["SELECT nosuch FROM t"], engine="postgresql")
    'A column does not exist (SQLSTATE 42703), at line 1, column 8, near “nosuch”.'
    """
    sentence, code = code_sentence(engine, error.code)
    label = ENGINE_LABELS.get(engine, "")
    if code is None:
        text = _KIND_SENTENCES.get(error.kind, "the statement failed")
        text += " (the target database gave no error code)"
    elif sentence:
        text = f"{sentence} ({label} {code})" if label else f"{sentence} ({code})"
    else:
        what = f"{label} {code}" if label else code
        text = f"the target database reported error {what}"
    index = error.statement
    statement = (
        statements[index]
        if index is not None and 0 <= index < len(statements) and isinstance(statements[index], str)
        else None
    )
    where = _where(statement, error.position, hidden) if statement is not None else ""
    prefix = f"Statement {index + 1}: " if index is not None and len(statements) > 1 else ""
    text = text[0].upper() + text[1:]
    return f"{prefix}{text}{where}."


def _where(statement: str, position: int | None, hidden: Sequence[str]) -> str:
    """ ", at line L, column C, near “token”" for a 1-based character ``position``."""
    if position is None or not 1 <= position <= len(statement) + 1:
        return ""
    index = position - 1
    while index < len(statement) and statement[index].isspace():
        index += 1
    line = statement.count("\n", 0, index) + 1
    column = index - (statement.rfind("\n", 0, index) + 1) + 1
    where = f", at line {line}, column {column}"
    span = token_span(statement, index)
    if span is None:
        return where + ", at the end of the statement"
    start, end = span
    if any(_overlaps(statement, secret, start, end) for secret in hidden if secret):
        return where
    return f"{where}, near “{_printable(statement[start:end])}”"


def token_span(text: str, index: int) -> tuple[int, int] | None:
    """The span of the one token starting at ``index`` (at most TOKEN_CHARS characters).

    >>> text = "SELECT 'it''s' || x::int FROM t"
    >>> [text[slice(*token_span(text, i))] for i in (0, 7, 15, 19)]
    ['SELECT', "'it''s'", '||', '::']
    """
    if not 0 <= index < len(text):
        return None
    char = text[index]
    end = index + 1
    if char in "'\"`":
        while end < len(text):
            if text[end] == char:
                if text[end + 1 : end + 2] == char:  # a doubled quote stays inside
                    end += 2
                    continue
                end += 1
                break
            end += 1
    elif char.isalnum() or char in "_$":
        while end < len(text) and (text[end].isalnum() or text[end] in "_$"):
            end += 1
    elif char in _OPERATOR_CHARS:
        while end < len(text) and text[end] in _OPERATOR_CHARS and end - index < 3:
            end += 1
    return index, min(end, index + TOKEN_CHARS)


_OPERATOR_CHARS = frozenset("+-*/<>=~!@#%^&|?:")


def _overlaps(text: str, secret: str, start: int, end: int) -> bool:
    found = text.find(secret)
    while found >= 0:
        if found < end and start < found + len(secret):
            return True
        found = text.find(secret, found + 1)
    return False


def _printable(token: str) -> str:
    cleaned = "".join(c if c.isprintable() else "?" for c in token)
    return cleaned if len(cleaned) < TOKEN_CHARS else cleaned[: TOKEN_CHARS - 1] + "…"
