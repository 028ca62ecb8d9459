"""Value detectors for sensitive data: what one sampled value *is*, and what free text *contains*.

Regexes here run over data values, never over SQL. Every pattern is anchored at the start of a
character run by a look-behind and uses bounded repetition, so scanning is linear in the text
length: each start position does a bounded amount of work, and most positions are rejected by the
look-behind at once. Checksums (Luhn, ISO 7064 mod 97, SSN ranges) remove most false positives.

Decisions, documented so nobody is surprised:

* Bare digit strings (``4155552671``, ``12345``) are never phone numbers or SSNs: too many ids,
  timestamps and amounts look the same. Only Luhn- and prefix-valid card numbers are found bare.
* A generic high-entropy token must be >= 24 characters of ``[A-Za-z0-9+/_=-]``, contain an
  upper-case letter, a lower-case letter and a digit, and have Shannon entropy >= 4.0 bits per
  character. UUIDs and hexadecimal strings (hashes of any length) are never secrets by entropy
  alone: they are identifiers and digests far more often than credentials.
* IBANs must be upper case (or all lower case in :func:`detect_value`), match the registry length
  of their country and pass the mod-97 check.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum


class SemanticType(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    NATIONAL_ID = "national_id"
    CREDIT_CARD = "credit_card"
    IBAN = "iban"
    PERSON_NAME = "person_name"
    STREET_ADDRESS = "street_address"
    DATE_OF_BIRTH = "date_of_birth"
    IP_ADDRESS = "ip_address"
    SECRET = "secret"  # noqa: S105 - a category name, not a password
    FINANCIAL = "financial"


@dataclass(frozen=True)
class TextMatch:
    """One piece of sensitive data inside a text: ``text[start:end]`` is of ``semantic_type``."""

    start: int
    end: int
    semantic_type: SemanticType


# Longest value detect_value looks at; PEM keys are a few KB, longer values are documents.
MAX_VALUE_CHARS = 20_000

# --------------------------------------------------------------------------------------------
# Patterns

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}"
    r"@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-]|\.[A-Za-z0-9])"
)
# Phone-shaped: E.164, or groups of digits with single separators, an optional country code,
# (area) and extension; the semantic checks (length, dates, SSNs, thousands) are in phone_ok.
_PHONE = re.compile(
    r"(?<![\w+./-])(?:"
    r"\+\d{7,15}"
    r"|(?:(?:\+|00)\d{1,3}[ .-]?)?"
    r"(?:\(\d{1,5}\)[ .-]?\d{2,8}(?:[ .-]\d{2,8}){0,5}|\d{1,8}(?:[ .-]\d{2,8}){1,5})"
    r")(?:[ ]?(?:x|ext\.?|#)[ ]?\d{1,6})?(?!\w)"
)
_PHONE_EXT = re.compile(r"[ ]?(?:x|ext\.?|#)[ ]?\d{1,6}$")
_SSN = re.compile(r"(?<![\w-])(\d{3})-(\d{2})-(\d{4})(?![\w-])")
_CARD = re.compile(
    r"(?<![\w-])(?:\d{13,19}|\d{4}([ -])\d{4,6}\1\d{4,5}(?:\1\d{3,4}){0,2})(?![\w-])"
)
_DIGITS = re.compile(r"\d+")
_LUHN_DOUBLE = str.maketrans("0123456789", "0246813579")
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)
_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?![\w]|\.\d)"
)
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_JWT = re.compile(
    r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,4000}\.eyJ[A-Za-z0-9_-]{2,8000}\.[A-Za-z0-9_-]{0,4000}(?![\w-])"
)
_VENDOR_SECRET = re.compile(
    r"(?<![A-Za-z0-9_])(?:"
    r"(?:AKIA|ASIA)[A-Z0-9]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{36,251}"
    r"|github_pat_[A-Za-z0-9_]{22,251}"
    r"|xox[abpr]-[A-Za-z0-9-]{10,250}"
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,247}"
    r"|pk_live_[A-Za-z0-9]{10,247}"
    r"|SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}"
    r")(?![A-Za-z0-9_])"
)
_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=:,\s]{0,20000}")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}-----")
# ``password=hunter22`` / ``api_key: abc...`` inside logs and tickets: the value is the secret.
_ASSIGNED_SECRET = re.compile(
    r"(?i)(?<![A-Za-z0-9])(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|token)"
    r"[\"']?[ ]{0,3}[:=][ ]{0,3}[\"']?([^\s\"',;]{6,200})"
)
_GENERIC_TOKEN = re.compile(r"(?<![\w+/=.-])[A-Za-z0-9+/_=-]{24,512}(?![\w+/=-]|\.\w)")
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_HEX = re.compile(r"[0-9a-fA-F]+")
_PASSWORD_HASH = re.compile(
    r"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}"
    r"|\$argon2(?:id|i|d)\$\S{20,}"
    r"|(?:pbkdf2_sha256|pbkdf2_sha1|argon2|bcrypt_sha256|bcrypt|scrypt)\$\S{20,}"
    r"|\$[156]\$[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{22,86}"
)
_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})|(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")

# IBAN lengths from the SWIFT registry (country code -> total length).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip

# --------------------------------------------------------------------------------------------
# Checks


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum."""
    rev = digits[::-1]
    total = sum(map(int, rev[0::2])) + sum(map(int, rev[1::2].translate(_LUHN_DOUBLE)))
    return total % 10 == 0


def _card_brand_ok(d: str) -> bool:
    n = len(d)
    two, three, four, six = int(d[:2]), int(d[:3]), int(d[:4]), int(d[:6])
    return (
        (d[0] == "4" and n in (13, 16, 19))  # Visa
        or (51 <= two <= 55 and n == 16)  # Mastercard
        or (2221 <= four <= 2720 and n == 16)  # Mastercard 2-series
        or (two in (34, 37) and n == 15)  # Amex
        or ((four == 6011 or 644 <= three <= 649 or two == 65) and 16 <= n <= 19)  # Discover
        or ((300 <= three <= 305 or two in (36, 38)) and 14 <= n <= 19)  # Diners
        or (3528 <= four <= 3589 and 16 <= n <= 19)  # JCB
        or (four in (2131, 1800) and n == 15)  # JCB (old 15-digit)
        or (two == 62 and 16 <= n <= 19)  # UnionPay
        or ((two in (50, 56, 57, 58) or d[:4] in ("6304", "6759", "6761", "6762", "6763"))
            and 13 <= n <= 19)  # Maestro
        or (2200 <= four <= 2204 and n == 16)  # Mir
        or (six in range(222100, 272100) and n == 16)
    )  # fmt: skip


def card_ok(candidate: str) -> bool:
    """13-19 digits (or 4-digit-led groups split by one kind of separator), known prefix, Luhn."""
    digits = candidate.replace(" ", "").replace("-", "")
    if (
        not 13 <= len(digits) <= 19
        or not digits.isdigit()
        or digits.count(digits[0]) == len(digits)
    ):
        return False
    return _card_brand_ok(digits) and luhn_ok(digits)


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """US SSN ranges: no 000/666/9xx area, no 00 group, no 0000 serial."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def iban_ok(candidate: str) -> bool:
    """Registry length for the country and ISO 7064 mod-97 == 1."""
    compact = candidate.replace(" ", "")
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isascii():
        return False
    if not compact[2:4].isdigit() or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _looks_like_date(groups: list[str]) -> bool:
    if len(groups) != 3:
        return False
    a, b, c = groups
    if len(a) == 4 and len(b) <= 2 and len(c) <= 2:
        year, x, y = int(a), int(b), int(c)
    elif len(c) == 4 and len(a) <= 2 and len(b) <= 2:
        year, x, y = int(c), int(a), int(b)
    else:
        return False
    return 1800 <= year <= 2200 and 1 <= x <= 31 and 1 <= y <= 31 and min(x, y) <= 12


def phone_ok(candidate: str) -> bool:
    """Decide whether a phone-shaped run is a phone number (see module notes)."""
    core = _PHONE_EXT.sub("", candidate) if ("x" in candidate or "#" in candidate) else candidate
    core = core.strip()
    groups = _DIGITS.findall(core)
    if not groups:
        return False
    plus = core[0] == "+"
    international = plus or (core.startswith("00") and core[2:3] != "0")
    paren = "(" in core
    first = groups[0]
    if not international and not paren and len(first) >= 4 and first[0] != "0":
        return False  # 2024-01-01, 1234-5678: phones here start with a trunk 0 or a 3-digit area
    digits = sum(map(len, groups))
    if not (8 if international else 7) <= digits <= 15:
        return False
    if len(groups) == 1:
        return plus  # E.164 without separators; bare digits are not phones
    if "." in core:
        if len(groups) < 3 or "-" in core:
            return False  # a decimal, a version or a mixed format, not a phone
        if len(groups) == 4 and _IPV4.fullmatch(core):
            return False
    if _looks_like_date(groups):
        return False
    if not international:
        if [len(g) for g in groups] == [3, 2, 4] and "-" in core:
            return False  # SSN-shaped
        if len(groups) < 3 and not (first[0] == "0" or paren):
            return False  # "2024-000123" is an order number; "030 1234567" is a phone
        if len(first) < 3 and first[0] != "0" and all(len(g) == 3 for g in groups[1:]):
            return False  # 1.234.567 / 12 345 678: thousands separators
    return True


def jwt_ok(candidate: str) -> bool:
    """The header segment must decode to a JSON object naming an ``alg``."""
    header = candidate.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        decoded = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text`` (0.0 for empty text)."""
    if not text:
        return 0.0
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def high_entropy_token(candidate: str) -> bool:
    """Conservative generic-secret test; UUIDs and hex digests never qualify."""
    if not 24 <= len(candidate) <= 512:
        return False
    if _UUID.fullmatch(candidate) or _HEX.fullmatch(candidate):
        return False
    has_lower = any(c.islower() for c in candidate)
    has_upper = any(c.isupper() for c in candidate)
    has_digit = any(c.isdigit() for c in candidate)
    if not (has_lower and has_upper and has_digit):
        return False
    return shannon_entropy(candidate) >= 4.0


def _ip_ok(candidate: str) -> bool:
    if candidate.count(":") < 2 and "." not in candidate:
        return False
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return any(ch.isalnum() for ch in candidate) and candidate.strip(":") != ""


# --------------------------------------------------------------------------------------------
# Text scanning

# A finder yields candidate spans; ``taken`` marks characters already claimed by a stronger
# detector, so finders skip them instead of validating candidates that would be discarded.
_Finder = Callable[[str, bytearray], Iterator[tuple[int, int]]]


def _skip_taken(taken: bytearray, start: int) -> int:
    """First free position at or after ``start`` (``start`` itself when it is free)."""
    if not taken[start]:
        return start
    free = taken.find(0, start)
    return len(taken) if free == -1 else free


def _simple(
    pattern: re.Pattern[str], check: Callable[[re.Match[str]], bool] | None = None
) -> _Finder:
    """Matches of ``pattern`` that pass ``check``; a rejected match is retried one char later.

    Retrying from ``start + 1`` (instead of after the rejected match) lets ``qty 2 4111 1111 ...``
    still find the card starting at ``4111``; every position is tried at most once.
    """

    def finder(text: str, taken: bytearray) -> Iterator[tuple[int, int]]:
        pos = 0
        while True:
            m = pattern.search(text, pos)
            if m is None:
                return
            if m.start() < len(taken) and taken[m.start()]:
                pos = _skip_taken(taken, m.start())
                continue
            if check is None or check(m):
                yield m.start(), m.end()
                pos = m.end() if m.end() > m.start() else m.start() + 1
            else:
                pos = m.start() + 1

    return finder


def _phone_cut(candidate: str) -> int:
    """Length of the longest prefix ending before a space with at most 15 digits (0: none)."""
    total, cut = 0, 0
    for m in _DIGITS.finditer(candidate):
        total += m.end() - m.start()
        if total > 15:
            break
        if m.end() < len(candidate) and candidate[m.end()] == " ":
            cut = m.end()
    return cut


def _find_phones(text: str, taken: bytearray) -> Iterator[tuple[int, int]]:
    pos = 0
    while True:
        m = _PHONE.search(text, pos)
        if m is None:
            return
        start, candidate = m.start(), m.group()
        if taken[start]:
            pos = _skip_taken(taken, start)
            continue
        head = len(candidate) - len(candidate.lstrip("0123456789"))
        if head >= 4 and candidate[0] != "0":
            pos = start + 1  # phone_ok's first rule, without the cost of a call
            continue
        if phone_ok(candidate):
            yield start, m.end()
            pos = m.end()
            continue
        # "call 415-555-2671 2024-01-01" runs on: retry once, cut at a space to <= 15 digits.
        cut = _phone_cut(candidate)
        if cut and phone_ok(candidate[:cut]):
            yield start, start + cut
            pos = start + cut
        else:
            pos = start + 1


_BARE_PHONE = re.compile(r"(?<![\w+./-])\+?\d{7,15}(?![\w-]|[.,]\d)")
_PHONE_WORDS = (
    "phone", "tel", "call", "mobile", "cell", "fax", "sms", "text", "whatsapp", "reach", "ring",
    "dial", "handy", "portable", "celular", "movil",
)  # fmt: skip


def _find_keyword_phones(text: str, taken: bytearray) -> Iterator[tuple[int, int]]:
    """Bare digits are phones in free text only shortly after a word like "call" or "phone"."""
    lowered = text.lower()
    if not any(word in lowered for word in _PHONE_WORDS):
        return
    for m in _BARE_PHONE.finditer(text):
        window = text[max(0, m.start() - 24) : m.start()].lower()
        if not taken[m.start()] and any(word in window for word in _PHONE_WORDS):
            yield m.start(), m.end()


def _find_pem(text: str, taken: bytearray) -> Iterator[tuple[int, int]]:
    if "PRIVATE KEY" not in text:
        return
    end_at, end_stop = -1, -1  # the next END marker after the current BEGIN, reused
    for begin in _PEM_BEGIN.finditer(text):
        if end_at != -2 and end_at < begin.end():
            m = _PEM_END.search(text, begin.end())
            end_at, end_stop = (m.start(), m.end()) if m else (-2, -1)
        body = _PEM_BODY.match(text, begin.end())
        body_end = body.end() if body else begin.end()
        if end_at >= 0 and body_end >= end_at:
            yield begin.start(), end_stop
        else:
            yield begin.start(), body_end  # truncated key: hide what there is


def _find_assigned(text: str, taken: bytearray) -> Iterator[tuple[int, int]]:
    for m in _ASSIGNED_SECRET.finditer(text):
        value = m.group(1)
        if any(not c.isalpha() for c in value) or len(value) >= 12:
            yield m.start(1), m.end(1)


# Priority order: earlier detectors win where spans overlap.
_FINDERS: tuple[tuple[SemanticType, _Finder], ...] = (
    (SemanticType.SECRET, _find_pem),
    (SemanticType.SECRET, _simple(_JWT, lambda m: jwt_ok(m.group()))),
    (SemanticType.SECRET, _simple(_VENDOR_SECRET)),
    (SemanticType.IBAN, _simple(_IBAN, lambda m: iban_ok(m.group()))),
    (SemanticType.CREDIT_CARD, _simple(_CARD, lambda m: card_ok(m.group()))),
    (SemanticType.NATIONAL_ID, _simple(_SSN, lambda m: ssn_ok(*m.groups()))),
    (SemanticType.EMAIL, _simple(_EMAIL)),
    (SemanticType.IP_ADDRESS, _simple(_IPV4)),
    (SemanticType.IP_ADDRESS, _simple(_IPV6, lambda m: _ip_ok(m.group()))),
    (SemanticType.PHONE, _find_phones),
    (SemanticType.PHONE, _find_keyword_phones),
    (SemanticType.SECRET, _find_assigned),
    (SemanticType.SECRET, _simple(_GENERIC_TOKEN, lambda m: high_entropy_token(m.group()))),
)


def find_in_text(text: str) -> list[TextMatch]:
    """Sensitive data embedded in ``text``: non-overlapping matches sorted by position.

    Linear time: every detector is a bounded scan, and overlaps are resolved with an occupancy
    mask, stronger detectors first (a PEM block beats the tokens inside it; a card beats a phone).
    """
    if not isinstance(text, str) or not text:
        return []
    taken = bytearray(len(text))
    found: list[TextMatch] = []
    for semantic_type, finder in _FINDERS:
        for start, end in finder(text, taken):
            if end <= start or taken.find(1, start, end) != -1:
                continue
            taken[start:end] = b"\x01" * (end - start)
            found.append(TextMatch(start, end, semantic_type))
    found.sort(key=lambda m: m.start)
    return found


def redact_text(text: str) -> str:
    """``text`` with every match of :func:`find_in_text` replaced by ``[type]``."""
    if not isinstance(text, str):
        return ""
    parts: list[str] = []
    pos = 0
    for match in find_in_text(text):
        parts.append(text[pos : match.start])
        parts.append(f"[{match.semantic_type.value}]")
        pos = match.end
    parts.append(text[pos:])
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Whole values


def value_text(value: object) -> str | None:
    """The text of a sampled value, or None for binary, booleans and non-textual objects."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            decoded = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
        if any(not ch.isprintable() and ch not in "\t\r\n" for ch in decoded):
            return None
        return decoded
    if isinstance(value, int):
        return str(value)
    return None


def is_secret_value(s: str) -> bool:
    """A whole value that is a credential: vendor key, JWT, PEM private key, password hash."""
    if _VENDOR_SECRET.fullmatch(s) or _PASSWORD_HASH.fullmatch(s):
        return True
    if s.startswith("-----BEGIN") and _PEM_BEGIN.match(s):
        return True
    if _JWT.fullmatch(s) and jwt_ok(s):
        return True
    return _GENERIC_TOKEN.fullmatch(s) is not None and high_entropy_token(s)


def detect_value(value: object) -> frozenset[SemanticType]:
    """What one sampled value *is* (not what it contains); empty when nothing matches.

    Integers are checked as card numbers only; bytes are decoded as UTF-8 text or ignored.
    """
    text = value_text(value)
    if text is None:
        return frozenset()
    s = text.strip()
    if not s or len(s) > MAX_VALUE_CHARS:
        return frozenset()
    if isinstance(value, int):
        return frozenset({SemanticType.CREDIT_CARD}) if card_ok(s) else frozenset()
    found: set[SemanticType] = set()
    if "@" in s and _EMAIL.fullmatch(s):
        found.add(SemanticType.EMAIL)
    if _CARD.fullmatch(s) and card_ok(s):
        found.add(SemanticType.CREDIT_CARD)
    ssn = _SSN.fullmatch(s)
    if ssn and ssn_ok(*ssn.groups()):
        found.add(SemanticType.NATIONAL_ID)
    elif _PHONE.fullmatch(s) and phone_ok(s):
        found.add(SemanticType.PHONE)
    upper = s.upper() if s.islower() else s
    if _IBAN.fullmatch(upper) and iban_ok(upper):
        found.add(SemanticType.IBAN)
    if _ip_ok(s):
        found.add(SemanticType.IP_ADDRESS)
    if is_secret_value(s):
        found.add(SemanticType.SECRET)
    return frozenset(found)


def date_like(value: object) -> bool:
    """A date, a datetime, or text/integers shaped like a calendar date or a birth year."""
    if isinstance(value, datetime.date):  # the type only; nothing here reads the clock
        return True
    if isinstance(value, int) and not isinstance(value, bool):
        return 1900 <= value <= 2100 or 19000101 <= value <= 21001231
    text = value_text(value)
    if text is None:
        return False
    m = _DATE.match(text.strip())
    return m is not None
