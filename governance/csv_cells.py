"""CSV cells a spreadsheet shows as text and never runs as a formula.

Warden's CSVs carry text others chose (a failed sign-in's user name, a statement's text), and a
cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets. Such cells get a leading apostrophe (OWASP's advice); lists and
objects are written as JSON.
"""

from __future__ import annotations

import json
from typing import Any

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text
