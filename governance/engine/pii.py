"""Sensitive-data discovery: propose what a column holds from its name, type and sampled values.

Pure Python: no Django, no I/O, no clock. Proposals are suggestions an admin confirms or overrides
(design principle 4, "zero setup, then refinement"), so each carries a confidence and a sentence
saying why. Name heuristics live in :mod:`.pii_names`, value detectors in :mod:`.pii_values`.

How a column is judged, strongest evidence first:

1. >= 60% of non-null samples *are* one detectable type (email, phone, SSN, card, IBAN, IP,
   secret): that type; confidence 0.74-0.90 from the ratio, >= 0.95 when the name agrees.
2. The name suggests a type the column's SQL type can hold, and >= 60% of samples are consistent
   with it (a date for a birth date, a number for a salary): 0.84-0.90.
3. Long free text (average > 40 chars, mostly with spaces) where >= 10% of samples *contain*
   personal data or secrets: the most frequent embedded type, ``free_text=True``.
4. The name alone: 0.6 (0.3 when most samples contradict it).

Booleans are never proposed; money-like numbers are financial only under a salary-like name.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from .pii_names import classify_name, name_words, person_table
from .pii_values import (
    SemanticType,
    TextMatch,
    card_ok,
    date_like,
    detect_value,
    find_in_text,
    redact_text,
    value_text,
)


class Sensitivity(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"

    def rank(self) -> int:
        """Position in PUBLIC < INTERNAL < CONFIDENTIAL < RESTRICTED."""
        return _SENSITIVITY_ORDER.index(self)


_SENSITIVITY_ORDER: tuple[Sensitivity, ...] = tuple(Sensitivity)

DEFAULT_SENSITIVITY: dict[SemanticType, Sensitivity] = {
    SemanticType.NATIONAL_ID: Sensitivity.RESTRICTED,
    SemanticType.CREDIT_CARD: Sensitivity.RESTRICTED,
    SemanticType.IBAN: Sensitivity.RESTRICTED,
    SemanticType.SECRET: Sensitivity.RESTRICTED,
    SemanticType.EMAIL: Sensitivity.CONFIDENTIAL,
    SemanticType.PHONE: Sensitivity.CONFIDENTIAL,
    SemanticType.PERSON_NAME: Sensitivity.CONFIDENTIAL,
    SemanticType.STREET_ADDRESS: Sensitivity.CONFIDENTIAL,
    SemanticType.DATE_OF_BIRTH: Sensitivity.CONFIDENTIAL,
    SemanticType.IP_ADDRESS: Sensitivity.CONFIDENTIAL,
    SemanticType.FINANCIAL: Sensitivity.CONFIDENTIAL,
}
RESTRICTED_TYPES: frozenset[SemanticType] = frozenset(
    t for t, s in DEFAULT_SENSITIVITY.items() if s is Sensitivity.RESTRICTED
)


@dataclass(frozen=True)
class Proposal:
    """What Warden thinks a column holds, how sure it is, and why."""

    semantic_type: SemanticType
    sensitivity: Sensitivity
    confidence: float
    evidence: str
    free_text: bool = False


# What a name says the column means, and what matching values look like (for evidence).
NAME_MEANS: dict[SemanticType, str] = {
    SemanticType.EMAIL: "an email address",
    SemanticType.PHONE: "a phone number",
    SemanticType.NATIONAL_ID: "a national id",
    SemanticType.CREDIT_CARD: "a payment card number",
    SemanticType.IBAN: "a bank account number",
    SemanticType.PERSON_NAME: "a person's name",
    SemanticType.STREET_ADDRESS: "a street address",
    SemanticType.DATE_OF_BIRTH: "a date of birth",
    SemanticType.IP_ADDRESS: "an IP address",
    SemanticType.SECRET: "a password, key or token",
    SemanticType.FINANCIAL: "pay or income",
}
VALUES_LOOK_LIKE: dict[SemanticType, str] = {
    SemanticType.EMAIL: "email addresses",
    SemanticType.PHONE: "phone numbers",
    SemanticType.NATIONAL_ID: "US SSNs",
    SemanticType.CREDIT_CARD: "Luhn-valid card numbers",
    SemanticType.IBAN: "IBANs with a valid checksum",
    SemanticType.PERSON_NAME: "names",
    SemanticType.STREET_ADDRESS: "addresses",
    SemanticType.DATE_OF_BIRTH: "dates",
    SemanticType.IP_ADDRESS: "IP addresses",
    SemanticType.SECRET: "keys, tokens or password hashes",
    SemanticType.FINANCIAL: "amounts",
}
_PRIORITY: tuple[SemanticType, ...] = tuple(SemanticType)

VALUE_THRESHOLD = 0.6
FREE_TEXT_THRESHOLD = 0.1
FREE_TEXT_MIN_AVG_CHARS = 40

# --------------------------------------------------------------------------------------------
# Column types

_BOOL_TYPES = frozenset({"bool", "boolean", "bit", "tinyint(1)"})
_TYPE_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("binary", ("blob", "bytea", "binary", "varbinary", "image")),
    ("date", ("date", "time", "year")),
    ("json", ("json",)),
    ("uuid", ("uuid", "uniqueidentifier")),
    ("inet", ("inet", "cidr")),
    ("text", ("char", "text", "string", "clob", "enum", "set", "name")),
    ("int", ("int", "serial")),
    ("number", ("numeric", "decimal", "real", "float", "double", "money", "number")),
)
# Which SQL type kinds can hold each semantic type (what a name match alone may claim).
_COMPATIBLE: dict[SemanticType, frozenset[str]] = {
    SemanticType.EMAIL: frozenset({"text", "unknown"}),
    SemanticType.PHONE: frozenset({"text", "unknown", "int"}),
    SemanticType.NATIONAL_ID: frozenset({"text", "unknown", "int"}),
    SemanticType.CREDIT_CARD: frozenset({"text", "unknown", "int", "number"}),
    SemanticType.IBAN: frozenset({"text", "unknown"}),
    SemanticType.PERSON_NAME: frozenset({"text", "unknown"}),
    SemanticType.STREET_ADDRESS: frozenset({"text", "unknown", "json"}),
    SemanticType.DATE_OF_BIRTH: frozenset({"date", "text", "unknown", "int"}),
    SemanticType.IP_ADDRESS: frozenset({"text", "unknown", "inet", "int", "binary"}),
    SemanticType.SECRET: frozenset({"text", "unknown", "binary", "uuid", "json"}),
    SemanticType.FINANCIAL: frozenset({"int", "number", "unknown"}),
}


def type_kind(type_name: str) -> str:
    """Coarse kind of a SQL type name: bool, date, int, number, text, json, binary, ... unknown."""
    t = (type_name or "").strip().lower()
    if t in _BOOL_TYPES or t.startswith("bool"):
        return "bool"
    for kind, needles in _TYPE_KINDS:
        if any(n in t for n in needles):
            return kind
    return "unknown"


# --------------------------------------------------------------------------------------------
# Loose support for a name's claim: values that are consistent with it without proving it.

_NAME_CHARS = re.compile(r"[^\W\d_]+(?:[ '.\-][^\W\d_]*){0,6}")
_ID_CHARS = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ./-]{4,24}")
_NUMERIC = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def _supports(semantic_type: SemanticType, value: object) -> bool:
    if semantic_type is SemanticType.DATE_OF_BIRTH:
        return date_like(value)
    if semantic_type is SemanticType.FINANCIAL:
        if isinstance(value, bool):
            return False
        if isinstance(value, int | float | Decimal):
            return True
        text = value_text(value)
        return text is not None and _NUMERIC.fullmatch(text.strip()) is not None
    text = value_text(value)
    if text is None:
        return False
    s = text.strip()
    if semantic_type in detect_value(value):
        return True
    digits = sum(ch.isdigit() for ch in s)
    if semantic_type is SemanticType.PHONE:
        return 7 <= digits <= 15 and all(ch.isdigit() or ch in "+-(). x" for ch in s)
    if semantic_type in (SemanticType.NATIONAL_ID, SemanticType.IBAN):
        return digits >= 5 and _ID_CHARS.fullmatch(s) is not None
    if semantic_type is SemanticType.CREDIT_CARD:
        return card_ok(s)
    if semantic_type is SemanticType.PERSON_NAME:
        return len(s) <= 100 and _NAME_CHARS.fullmatch(s) is not None
    if semantic_type is SemanticType.STREET_ADDRESS:
        return 5 <= len(s) <= 300 and digits > 0 and any(ch.isalpha() for ch in s)
    if semantic_type is SemanticType.SECRET:
        return len(s) >= 6 and not any(ch.isspace() for ch in s)
    return False


# --------------------------------------------------------------------------------------------
# Columns


def _present(samples: Sequence[object]) -> list[object]:
    out: list[object] = []
    for v in samples:
        if v is None or (isinstance(v, str) and not v.strip()):
            continue
        out.append(v)
    return out


def _free_text(values: list[object]) -> list[str] | None:
    texts = [t for t in (value_text(v) for v in values) if t is not None]
    if not texts or len(texts) < len(values) / 2:
        return None
    avg = sum(len(t) for t in texts) / len(texts)
    spaced = sum(1 for t in texts if " " in t.strip())
    if avg <= FREE_TEXT_MIN_AVG_CHARS or spaced < len(texts) / 2:
        return None
    return texts


def _pick(counts: Counter[SemanticType]) -> tuple[SemanticType, int] | None:
    if not counts:
        return None
    best = max(counts.items(), key=lambda kv: (kv[1], -_PRIORITY.index(kv[0])))
    return best


def _ref(column: str) -> str:
    return f"column name '{column}'"


def classify_column(
    table: str, column: str, type_name: str, samples: Sequence[object]
) -> Proposal | None:
    """Propose what ``table.column`` holds from its name, SQL type and sampled values."""
    kind = type_kind(type_name)
    if kind == "bool":
        return None
    values = _present(samples)
    if values and all(isinstance(v, bool) for v in values):
        return None
    n = len(values)
    named = classify_name(table, column)
    if named is not None and kind not in _COMPATIBLE[named]:
        named = None

    detected: Counter[SemanticType] = Counter()
    for v in values:
        detected.update(detect_value(v))
    best = _pick(detected)

    # 1. The values themselves are a detectable type.
    if best is not None and best[1] / n >= VALUE_THRESHOLD:
        found, hits = best
        ratio = hits / n
        seen = f"{hits} of {n} sampled values look like {VALUES_LOOK_LIKE[found]}"
        if named is found:
            confidence = 0.9 + 0.09 * ratio
            evidence = f"{_ref(column)} means {NAME_MEANS[found]}; {seen}"
        elif named is not None:
            confidence = 0.45 + 0.4 * ratio
            evidence = f"{_ref(column)} suggests {NAME_MEANS[named]}, but {seen}"
        else:
            confidence = 0.5 + 0.4 * ratio
            evidence = seen
        return _proposal(found, confidence, evidence)

    # 2. The name says it, and the values are consistent with it.
    support = sum(1 for v in values if named is not None and _supports(named, v))
    if named is not None and n and support / n >= VALUE_THRESHOLD:
        ratio = support / n
        evidence = (
            f"{_ref(column)} means {NAME_MEANS[named]}; {support} of {n} sampled values "
            f"look like {VALUES_LOOK_LIKE[named]}"
        )
        return _proposal(named, 0.75 + 0.15 * ratio, evidence)

    # 3. Free text that contains personal data or secrets.
    texts = _free_text(values) if kind in ("text", "unknown", "json") else None
    if texts is not None:
        proposal = _free_text_proposal(column, texts)
        if proposal is not None:
            return proposal

    # 4. The name alone.
    if named is not None:
        if n >= 5 and support / n < 0.2:
            evidence = (
                f"{_ref(column)} suggests {NAME_MEANS[named]}, but only {support} of {n} "
                f"sampled values look like {VALUES_LOOK_LIKE[named]}"
            )
            return _proposal(named, 0.3, evidence)
        evidence = f"{_ref(column)} means {NAME_MEANS[named]}"
        bare_name = name_words(column)[-1:] == ("name",)
        if named is SemanticType.PERSON_NAME and bare_name and person_table(table):
            evidence += f" in a table about people ('{table}')"
        if not n:
            evidence += "; no values were sampled"
        return _proposal(named, 0.6, evidence)
    return None


def _free_text_proposal(column: str, texts: list[str]) -> Proposal | None:
    per_type: Counter[SemanticType] = Counter()
    with_any = 0
    for text in texts:
        types = {m.semantic_type for m in find_in_text(text)}
        per_type.update(types)
        with_any += bool(types)
    n = len(texts)
    if with_any / n < FREE_TEXT_THRESHOLD:
        return None
    best = _pick(per_type)
    assert best is not None
    found = best[0]
    frequent = [t for t, c in per_type.items() if c / n >= FREE_TEXT_THRESHOLD] or [found]
    sensitivity = max((DEFAULT_SENSITIVITY[t] for t in frequent), key=Sensitivity.rank)
    kinds = ", ".join(
        f"{VALUES_LOOK_LIKE[t]} in {c}"
        for t, c in sorted(per_type.items(), key=lambda kv: (-kv[1], _PRIORITY.index(kv[0])))
    )
    evidence = (
        f"'{column}' is free text; {with_any} of {n} sampled values contain personal data or "
        f"secrets ({kinds})"
    )
    share = with_any / n
    return Proposal(found, sensitivity, round(min(0.9, 0.5 + 0.8 * share), 2), evidence, True)


def _proposal(semantic_type: SemanticType, confidence: float, evidence: str) -> Proposal:
    return Proposal(
        semantic_type=semantic_type,
        sensitivity=DEFAULT_SENSITIVITY[semantic_type],
        confidence=round(min(max(confidence, 0.0), 1.0), 2),
        evidence=evidence,
        free_text=False,
    )


__all__ = [
    "DEFAULT_SENSITIVITY",
    "RESTRICTED_TYPES",
    "Proposal",
    "SemanticType",
    "Sensitivity",
    "TextMatch",
    "classify_column",
    "classify_name",
    "detect_value",
    "find_in_text",
    "redact_text",
]
