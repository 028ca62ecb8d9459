"""The API's JSON body parser: text that cannot be stored never gets past the door.

PostgreSQL's text and JSON refuse NUL characters, UTF-8 has no unpaired surrogates (JSON's
`"\\ud800"` escapes make them), and JSON has no NaN or Infinity (Python's parser takes them).
Any of these deep in a body would otherwise reach an audit event or a row and fail there, as a
500 with nothing recorded. Refused here, for every endpoint and every field, as a 400.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from ninja.parser import Parser


class UnstorableInput(ValueError):
    """A body holding text or numbers Warden cannot store; the message says which."""


def _constant(name: str) -> Any:
    raise UnstorableInput(f"JSON has no {name}: send a finite number.")


def _check(value: Any) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise UnstorableInput("Text in the body contains a NUL character.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UnstorableInput("Text in the body contains an unpaired surrogate.") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key)
            _check(item)
    elif isinstance(value, list):
        for item in value:
            _check(item)


class StrictParser(Parser):
    def parse_body(self, request: HttpRequest) -> Any:
        data = json.loads(request.body, parse_constant=_constant)
        _check(data)
        return data
