"""Synthetic demo data for Warden.

Seeds a small, realistic-looking "shop" schema full of (fake) PII and secrets into a
PostgreSQL, MySQL/MariaDB or SQLite database, so the governance gateway has something
worth governing in demos and tests.

The data set is generated once in Python from a fixed seed (a dedicated Faker
instance plus ``random.Random``) and then bulk-inserted, so every engine receives
exactly the same rows.  Nothing here is real: e-mail addresses use the reserved
``example.*`` domains, card numbers are merely Luhn-valid, and the API "secrets" are
random strings in the shape of well-known key formats.

This module is deliberately free of Django imports; the database drivers are
imported lazily so that parsing a DSN needs neither of them.

Timestamps are naive and mean UTC on every engine (PostgreSQL ``timestamp``, MySQL
``DATETIME``, SQLite ISO-8601 text).
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import sqlite3
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from faker import Faker

__all__ = [
    "DSN",
    "ENGINES",
    "ORDER_STATUSES",
    "PUBLIC_TABLES",
    "TABLES",
    "DemoData",
    "generate",
    "luhn_valid",
    "parse_dsn",
    "seed",
]

# --------------------------------------------------------------------------- constants

#: Demo tables in dependency (creation / insertion) order.
TABLES: tuple[str, ...] = (
    "customers",
    "payment_cards",
    "orders",
    "support_tickets",
    "employees",
    "api_credentials",
    "public_reports",
)

#: Tables that hold no personal data or secrets.
PUBLIC_TABLES: tuple[str, ...] = ("public_reports",)

ENGINES: tuple[str, ...] = ("postgresql", "mysql", "sqlite")

ORDER_STATUSES: tuple[str, ...] = ("pending", "paid", "shipped", "refunded", "cancelled")

EMPLOYEE_COUNT = 50
API_CREDENTIAL_COUNT = 20
PUBLIC_REPORT_COUNT = 10

#: Fixed "now" of the demo world; never use the wall clock, or re-seeding would drift.
ANCHOR = datetime(2025, 6, 30, 12, 0, 0)

_SCHEMES: dict[str, str] = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}

_DOB_START = date(1945, 1, 1)
_DOB_SPAN_DAYS = (date(2005, 12, 31) - _DOB_START).days

_CUSTOMER_DOMAINS = ("example.com", "example.org", "example.net")
_WORK_DOMAIN = "corp.example.com"

# Faker card type -> display brand; all of these produce 16-digit numbers.
_CARD_TYPES: tuple[tuple[str, str, int], ...] = (
    ("visa16", "Visa", 50),
    ("mastercard", "Mastercard", 35),
    ("discover", "Discover", 10),
    ("jcb16", "JCB", 5),
)

_ALNUM = string.ascii_letters + string.digits
_UPPER_ALNUM = string.ascii_uppercase + string.digits
_B64URL = string.ascii_letters + string.digits + "-_"

Row = tuple[Any, ...]

# --------------------------------------------------------------------------- DSN


@dataclass(frozen=True)
class DSN:
    """A parsed database URL.  For SQLite, ``database`` is the file path."""

    engine: str
    host: str
    port: int | None
    database: str
    user: str
    password: str = field(default="", repr=False)

    def redacted(self) -> str:
        """The URL with the password masked, safe for logs."""
        if self.engine == "sqlite":
            return f"sqlite://{self.database}"
        auth = self.user + (":***" if self.password else "")
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.engine}://{auth}{'@' if auth else ''}{self.host}{port}/{self.database}"


def parse_dsn(url: str) -> DSN:
    """Parse ``postgresql://``, ``mysql://`` (or ``mariadb://``) and ``sqlite:///`` URLs.

    Raises ``ValueError`` with a human-readable message for anything else.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("database URL is empty")
    url = url.strip()
    if "://" not in url:
        raise ValueError(
            "database URL must look like scheme://..., e.g. postgresql://user:pass@host:5432/db"
        )
    scheme_raw = url.split("://", 1)[0].lower()
    engine = _SCHEMES.get(scheme_raw)
    if engine is None:
        supported = ", ".join(sorted(_SCHEMES))
        raise ValueError(f"unknown database scheme {scheme_raw!r}; expected one of: {supported}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. malformed IPv6 host
        raise ValueError(f"malformed database URL: {exc}") from None
    if parts.query or parts.fragment:
        raise ValueError("query parameters and fragments are not supported in the database URL")
    if engine == "sqlite":
        return _parse_sqlite(url, parts)
    return _parse_server(engine, parts)


def _parse_sqlite(url: str, parts: SplitResult) -> DSN:
    if parts.netloc:
        raise ValueError(
            f"sqlite URL must have no host ({parts.netloc!r} given); "
            "use sqlite:///absolute/path/to/file.db"
        )
    path = unquote(parts.path)
    if path.startswith("//"):  # sqlite:////abs/path.db (SQLAlchemy style) is accepted too
        path = "/" + path.lstrip("/")
    if not path or path == "/":
        raise ValueError("sqlite URL is missing the database file path, e.g. sqlite:///tmp/demo.db")
    if ":memory:" in path:
        raise ValueError("in-memory sqlite databases cannot be seeded; give a file path")
    if "\x00" in path:
        raise ValueError("sqlite path contains a NUL byte")
    return DSN(engine="sqlite", host="", port=None, database=path, user="", password="")


def _parse_server(engine: str, parts: SplitResult) -> DSN:
    try:
        port = parts.port
    except ValueError:
        raw = parts.netloc.rsplit("@", 1)[-1]
        raw_port = raw.rsplit(":", 1)[-1] if ":" in raw else raw
        raise ValueError(
            f"invalid port {raw_port!r} in {engine} URL; expected an integer 1-65535"
        ) from None
    if port == 0:
        raise ValueError(f"invalid port 0 in {engine} URL; expected an integer 1-65535")
    database = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    if not database:
        raise ValueError(
            f"{engine} URL is missing the database name, e.g. {engine}://user:pass@host/dbname"
        )
    if "/" in database:
        raise ValueError(f"{engine} database name must not contain '/': {database!r}")
    if "\x00" in database or len(database) > 63:
        raise ValueError(f"invalid {engine} database name {database!r}")
    return DSN(
        engine=engine,
        host=parts.hostname or "",
        port=port,
        database=database,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


# --------------------------------------------------------------------------- generation


def luhn_valid(number: str) -> bool:
    """True if ``number`` is all digits and passes the Luhn checksum."""
    if not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class DemoData:
    """The generated rows, keyed by table name; column order matches ``COLUMNS``."""

    rows: dict[str, list[Row]]

    def counts(self) -> dict[str, int]:
        return {table: len(self.rows[table]) for table in TABLES}


COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "id",
        "full_name",
        "email",
        "phone",
        "ssn",
        "date_of_birth",
        "street_address",
        "city",
        "country",
        "created_at",
    ),
    "payment_cards": ("id", "customer_id", "card_number", "expiry", "brand"),
    "orders": ("id", "customer_id", "ordered_at", "total_cents", "status"),
    "support_tickets": ("id", "customer_id", "subject", "body", "created_at"),
    "employees": ("id", "full_name", "work_email", "salary_cents", "manager_id"),
    "api_credentials": ("id", "service", "api_key", "created_at"),
    "public_reports": ("id", "title", "payload", "published_at"),
}


def _rand_ts(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A second-precision timestamp in [start, end]."""
    span = max(0, int((end - start).total_seconds()))
    return start + timedelta(seconds=rng.randint(0, span))


def _phone(rng: random.Random) -> str:
    def three() -> str:
        # North-American numbering: first digit 2-9, avoid N11 service codes.
        while True:
            s = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
            if s[1:] != "11":
                return s

    area, exchange, line = three(), three(), f"{rng.randint(0, 9999):04d}"
    fmt = rng.choice(("({a}) {e}-{l}", "{a}-{e}-{l}", "+1-{a}-{e}-{l}", "{a}.{e}.{l}"))
    return fmt.format(a=area, e=exchange, l=line)


def _email_local(first: str, last: str, rng: random.Random) -> str:
    first_c = re.sub(r"[^a-z]", "", first.lower()) or "user"
    last_c = re.sub(r"[^a-z]", "", last.lower()) or "person"
    style = rng.randrange(4)
    if style == 0:
        return f"{first_c}.{last_c}"
    if style == 1:
        return f"{first_c[0]}{last_c}"
    if style == 2:
        return f"{first_c}{last_c[0]}{rng.randint(1, 99)}"
    return f"{first_c}_{last_c}{rng.randint(1950, 2005)}"


def _unique(candidate: str, seen: set[str]) -> str:
    if candidate not in seen:
        seen.add(candidate)
        return candidate
    local, _, domain = candidate.partition("@")
    n = 2
    while f"{local}{n}@{domain}" in seen:
        n += 1
    value = f"{local}{n}@{domain}"
    seen.add(value)
    return value


def _card(fake: Faker, rng: random.Random) -> tuple[str, str]:
    types = [t for t, _, _ in _CARD_TYPES]
    weights = [w for _, _, w in _CARD_TYPES]
    brands = {t: b for t, b, _ in _CARD_TYPES}
    card_type = rng.choices(types, weights=weights)[0]
    for _ in range(100):
        number = re.sub(r"\D", "", fake.credit_card_number(card_type=card_type))
        if len(number) == 16 and luhn_valid(number):
            return number, brands[card_type]
    raise RuntimeError(f"Faker did not produce a valid 16-digit {card_type} number")


def _ticket_body(
    fake: Faker,
    rng: random.Random,
    mode: str,
    first_name: str,
    email: str,
    phone: str,
    last4: str | None,
    order_id: int | None,
) -> str:
    parts: list[str] = [rng.choice(("Hi,", "Hello,", "Hi there,", "Good morning,", "Hey,"))]
    if order_id is not None:
        parts.append(
            rng.choice(
                (
                    f"My order #{order_id} still hasn't arrived.",
                    f"I was charged twice for order #{order_id}.",
                    f"Order #{order_id} arrived damaged.",
                    f"I'd like to return the items from order #{order_id}.",
                )
            )
        )
    else:
        parts.append(
            rng.choice(
                (
                    "I can't log in to my account.",
                    "I need to update my shipping address.",
                    "My password reset link doesn't work.",
                    "Please close my account.",
                )
            )
        )
    parts.append(fake.sentence(nb_words=rng.randint(6, 12)))
    if last4 is not None and rng.random() < 0.4:
        parts.append(f"The card I used ends in {last4}.")
    if mode == "email":
        parts.append(rng.choice((f"Please reach me at {email}.", f"You can email me at {email}.")))
    elif mode == "phone":
        parts.append(rng.choice((f"Call me on {phone}.", f"My number is {phone}, text is fine.")))
    elif mode == "both":
        parts.append(f"Please reach me at {email} or {phone}.")
    else:
        parts.append("Please just reply to this ticket.")
    parts.append(f"Thanks, {first_name}")
    return " ".join(parts)


def _secret(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _api_key(rng: random.Random, style: str) -> str:
    if style == "stripe":
        return "sk_live_" + _secret(rng, _ALNUM, 24)
    if style == "github":
        return "ghp_" + _secret(rng, _ALNUM, 36)
    if style == "aws":
        return "AKIA" + _secret(rng, _UPPER_ALNUM, 16)
    if style == "slack":
        return (
            f"xoxb-{rng.randint(10**10, 10**11 - 1)}-{rng.randint(10**12, 10**13 - 1)}-"
            + _secret(rng, _ALNUM, 24)
        )
    # sendgrid
    return "SG." + _secret(rng, _B64URL, 22) + "." + _secret(rng, _B64URL, 43)


_API_STYLES: tuple[tuple[str, str], ...] = (
    ("stripe", "stripe-payments"),
    ("github", "github-ci"),
    ("aws", "aws-s3-backups"),
    ("slack", "slack-alerts"),
    ("sendgrid", "sendgrid-mail"),
)


def generate(customers: int = 1000, seed: int = 42) -> DemoData:
    """Build the whole demo data set in memory, deterministically from ``seed``."""
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 1:
        raise ValueError(f"customers must be a positive integer, got {customers!r}")
    Faker.seed(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)

    # customers ------------------------------------------------------------------------
    cust_rows: list[Row] = []
    first_names: list[str] = []
    seen_emails: set[str] = set()
    start = ANCHOR - timedelta(days=3 * 365)
    for cid in range(1, customers + 1):
        first, last = fake.first_name(), fake.last_name()
        email = _unique(
            f"{_email_local(first, last, rng)}@{rng.choice(_CUSTOMER_DOMAINS)}", seen_emails
        )
        dob = _DOB_START + timedelta(days=rng.randint(0, _DOB_SPAN_DAYS))
        country = "United States" if rng.random() < 0.8 else fake.country()
        cust_rows.append(
            (
                cid,
                f"{first} {last}",
                email,
                _phone(rng),
                fake.ssn(),
                dob,
                fake.street_address(),
                fake.city(),
                country,
                _rand_ts(rng, start, ANCHOR - timedelta(days=30)),
            )
        )
        first_names.append(first)

    # payment cards (~1.2 per customer) ---------------------------------------------------
    card_rows: list[Row] = []
    last4_by_customer: dict[int, str] = {}
    for cust in cust_rows:
        cid = cust[0]
        for _ in range(2 if rng.random() < 0.2 else 1):
            number, brand = _card(fake, rng)
            expiry = f"{rng.randint(1, 12):02d}/{(ANCHOR.year + rng.randint(0, 5)) % 100:02d}"
            card_rows.append((len(card_rows) + 1, cid, number, expiry, brand))
            last4_by_customer.setdefault(cid, number[-4:])

    # orders (~5 per customer) ------------------------------------------------------------
    order_rows: list[Row] = []
    orders_by_customer: dict[int, list[int]] = {}
    status_weights = (5, 40, 40, 8, 7)
    for cust in cust_rows:
        cid, created = cust[0], cust[9]
        for _ in range(rng.randint(1, 9)):
            oid = len(order_rows) + 1
            status = rng.choices(ORDER_STATUSES, weights=status_weights)[0]
            total = rng.randint(499, 49_999) if rng.random() < 0.9 else rng.randint(50_000, 250_000)
            order_rows.append((oid, cid, _rand_ts(rng, created, ANCHOR), total, status))
            orders_by_customer.setdefault(cid, []).append(oid)

    # support tickets (~1 per 2 customers), contact-detail mix guaranteed -----------------
    n_tickets = max(1, customers // 2)
    modes = [("email", "phone", "both", "neither")[i % 4] for i in range(n_tickets)]
    rng.shuffle(modes)
    subjects = (
        "Where is my order?",
        "Refund request",
        "Double charge on my card",
        "Cannot log in",
        "Change of address",
        "Damaged item",
        "Account closure",
        "Question about my invoice",
    )
    ticket_rows: list[Row] = []
    for tid, mode in enumerate(modes, start=1):
        cust = cust_rows[rng.randrange(customers)]
        cid = cust[0]
        cust_orders = orders_by_customer.get(cid, [])
        order_id = rng.choice(cust_orders) if cust_orders and rng.random() < 0.7 else None
        body = _ticket_body(
            fake,
            rng,
            mode,
            first_names[cid - 1],
            cust[2],
            cust[3] if rng.random() < 0.6 else _phone(rng),
            last4_by_customer.get(cid),
            order_id,
        )
        ticket_rows.append((tid, cid, rng.choice(subjects), body, _rand_ts(rng, cust[9], ANCHOR)))

    # employees (self-referencing manager hierarchy) ---------------------------------------
    emp_rows: list[Row] = []
    seen_work: set[str] = set()
    for eid in range(1, EMPLOYEE_COUNT + 1):
        first, last = fake.first_name(), fake.last_name()
        local = f"{re.sub(r'[^a-z]', '', first.lower())}.{re.sub(r'[^a-z]', '', last.lower())}"
        work_email = _unique(f"{local}@{_WORK_DOMAIN}", seen_work)
        if eid == 1:
            manager: int | None = None
            salary = rng.randint(250_000, 400_000)
        elif eid <= 6:
            manager = 1
            salary = rng.randint(150_000, 250_000)
        else:
            manager = rng.randint(2, min(eid - 1, 12))
            salary = rng.randint(55_000, 160_000)
        emp_rows.append((eid, f"{first} {last}", work_email, salary * 100, manager))

    # api credentials ------------------------------------------------------------------------
    cred_rows: list[Row] = []
    seen_keys: set[str] = set()
    for kid in range(1, API_CREDENTIAL_COUNT + 1):
        style, service = _API_STYLES[(kid - 1) % len(_API_STYLES)]
        key = _api_key(rng, style)
        while key in seen_keys:  # pragma: no cover - astronomically unlikely
            key = _api_key(rng, style)
        seen_keys.add(key)
        cred_rows.append((kid, service, key, _rand_ts(rng, ANCHOR - timedelta(days=720), ANCHOR)))

    # public reports: monthly aggregates over the generated orders (no PII) ----------------
    report_rows = _public_reports(order_rows, cust_rows)

    return DemoData(
        rows={
            "customers": cust_rows,
            "payment_cards": card_rows,
            "orders": order_rows,
            "support_tickets": ticket_rows,
            "employees": emp_rows,
            "api_credentials": cred_rows,
            "public_reports": report_rows,
        }
    )


def _public_reports(order_rows: Sequence[Row], cust_rows: Sequence[Row]) -> list[Row]:
    months: list[tuple[int, int]] = []
    y, m = ANCHOR.year, ANCHOR.month
    for _ in range(PUBLIC_REPORT_COUNT):
        months.append((y, m))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    months.reverse()

    rows: list[Row] = []
    for rid, (year, month) in enumerate(months, start=1):
        in_month = [o for o in order_rows if (o[2].year, o[2].month) == (year, month)]
        statuses = Counter(o[4] for o in in_month)
        revenue = sum(o[3] for o in in_month if o[4] in ("paid", "shipped"))
        new_customers = sum(1 for c in cust_rows if (c[9].year, c[9].month) == (year, month))
        payload = {
            "report": "monthly_orders",
            "period": f"{year:04d}-{month:02d}",
            "orders": len(in_month),
            "revenue_cents": revenue,
            "average_order_cents": (
                round(sum(o[3] for o in in_month) / len(in_month)) if in_month else 0
            ),
            "by_status": {s: statuses.get(s, 0) for s in ORDER_STATUSES},
            "new_customers": new_customers,
        }
        title = f"Monthly order summary - {date(year, month, 1):%B %Y}"
        published = datetime(year + (month == 12), month % 12 + 1, 1, 9, 0, 0)
        rows.append(
            (rid, title, json.dumps(payload, sort_keys=True, separators=(",", ":")), published)
        )
    return rows


# --------------------------------------------------------------------------- schema

# Logical column types, mapped per engine below.
_SCHEMA: dict[str, tuple[tuple[str, str, bool], ...]] = {
    # (column, logical type, nullable)
    "customers": (
        ("id", "pk", False),
        ("full_name", "varchar(200)", False),
        ("email", "varchar(254)", False),
        ("phone", "varchar(32)", False),
        ("ssn", "char(11)", False),
        ("date_of_birth", "date", False),
        ("street_address", "varchar(255)", False),
        ("city", "varchar(100)", False),
        ("country", "varchar(100)", False),
        ("created_at", "timestamp", False),
    ),
    "payment_cards": (
        ("id", "pk", False),
        ("customer_id", "ref", False),
        ("card_number", "char(16)", False),
        ("expiry", "char(5)", False),
        ("brand", "varchar(32)", False),
    ),
    "orders": (
        ("id", "pk", False),
        ("customer_id", "ref", False),
        ("ordered_at", "timestamp", False),
        ("total_cents", "bigint", False),
        ("status", "varchar(16)", False),
    ),
    "support_tickets": (
        ("id", "pk", False),
        ("customer_id", "ref", False),
        ("subject", "varchar(200)", False),
        ("body", "text", False),
        ("created_at", "timestamp", False),
    ),
    "employees": (
        ("id", "pk", False),
        ("full_name", "varchar(200)", False),
        ("work_email", "varchar(254)", False),
        ("salary_cents", "bigint", False),
        ("manager_id", "ref", True),
    ),
    "api_credentials": (
        ("id", "pk", False),
        ("service", "varchar(64)", False),
        ("api_key", "varchar(128)", False),
        ("created_at", "timestamp", False),
    ),
    "public_reports": (
        ("id", "pk", False),
        ("title", "varchar(200)", False),
        ("payload", "json", False),
        ("published_at", "timestamp", False),
    ),
}

# table -> extra table-level constraints (engine-neutral SQL)
_CONSTRAINTS: dict[str, tuple[str, ...]] = {
    "customers": ("CONSTRAINT uq_customers_email UNIQUE (email)",),
    "payment_cards": (
        "CONSTRAINT fk_payment_cards_customer FOREIGN KEY (customer_id) "
        "REFERENCES customers (id) ON DELETE CASCADE",
    ),
    "orders": (
        "CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) "
        "REFERENCES customers (id) ON DELETE CASCADE",
        "CONSTRAINT ck_orders_status CHECK (status IN ("
        + ", ".join(f"'{s}'" for s in ORDER_STATUSES)
        + "))",
        "CONSTRAINT ck_orders_total CHECK (total_cents >= 0)",
    ),
    "support_tickets": (
        "CONSTRAINT fk_support_tickets_customer FOREIGN KEY (customer_id) "
        "REFERENCES customers (id) ON DELETE CASCADE",
    ),
    "employees": (
        "CONSTRAINT uq_employees_work_email UNIQUE (work_email)",
        "CONSTRAINT fk_employees_manager FOREIGN KEY (manager_id) "
        "REFERENCES employees (id) ON DELETE SET NULL",
    ),
    "api_credentials": ("CONSTRAINT uq_api_credentials_api_key UNIQUE (api_key)",),
    "public_reports": (),
}

_INDEXED_FKS: dict[str, str] = {
    "payment_cards": "customer_id",
    "orders": "customer_id",
    "support_tickets": "customer_id",
    "employees": "manager_id",
}

_TYPE_MAP: dict[str, dict[str, str]] = {
    "postgresql": {
        "pk": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "ref": "BIGINT",
        "bigint": "BIGINT",
        "text": "TEXT",
        "date": "DATE",
        "timestamp": "TIMESTAMP(0)",
        "json": "JSONB",
    },
    "mysql": {
        "pk": "BIGINT AUTO_INCREMENT PRIMARY KEY",
        "ref": "BIGINT",
        "bigint": "BIGINT",
        "text": "TEXT",
        "date": "DATE",
        "timestamp": "DATETIME",
        "json": "JSON",
    },
    "sqlite": {
        "pk": "INTEGER PRIMARY KEY",
        "ref": "INTEGER",
        "bigint": "INTEGER",
        "text": "TEXT",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
        "json": "TEXT",
    },
}


def _col_type(engine: str, logical: str) -> str:
    mapped = _TYPE_MAP[engine].get(logical)
    if mapped is not None:
        return mapped
    return logical.upper()  # varchar(N) / char(N) are spelled the same everywhere


def create_table_sql(engine: str, table: str) -> list[str]:
    """DDL statements (CREATE TABLE + indexes) for ``table`` on ``engine``."""
    lines = []
    for name, logical, nullable in _SCHEMA[table]:
        col = f"{name} {_col_type(engine, logical)}"
        if logical != "pk" and not nullable:
            col += " NOT NULL"
        lines.append(col)
    lines.extend(_CONSTRAINTS[table])
    suffix = ""
    if engine == "mysql":
        suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
    stmts = [f"CREATE TABLE {table} (\n    " + ",\n    ".join(lines) + f"\n){suffix}"]
    fk = _INDEXED_FKS.get(table)
    if fk is not None and engine != "mysql":  # InnoDB indexes FK columns itself
        stmts.append(f"CREATE INDEX ix_{table}_{fk} ON {table} ({fk})")
    return stmts


def _drop_sql() -> list[str]:
    return [f"DROP TABLE IF EXISTS {t}" for t in reversed(TABLES)]


def _insert_sql(table: str, placeholder: str) -> str:
    cols = COLUMNS[table]
    return (
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([placeholder] * len(cols))})"
    )


# --------------------------------------------------------------------------- seeding


def seed(dsn: DSN, *, customers: int = 1000, seed: int = 42) -> dict[str, int]:
    """(Re)create the demo tables in ``dsn`` and fill them; returns row counts per table.

    Idempotent: the database is created if missing, the demo tables are dropped and
    recreated, and the same ``seed`` always yields the same rows on every engine.
    """
    seeders: dict[str, Callable[[DSN, DemoData], dict[str, int]]] = {
        "postgresql": _seed_postgresql,
        "mysql": _seed_mysql,
        "sqlite": _seed_sqlite,
    }
    seeder = seeders.get(dsn.engine)
    if seeder is None:
        raise ValueError(f"unsupported engine {dsn.engine!r}; expected one of {ENGINES}")
    data = generate(customers=customers, seed=seed)
    return seeder(dsn, data)


# PostgreSQL ------------------------------------------------------------------------------


def _pg_kwargs(dsn: DSN, database: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dbname": database, "connect_timeout": 10}
    if dsn.host:
        kwargs["host"] = dsn.host
    if dsn.port is not None:
        kwargs["port"] = dsn.port
    if dsn.user:
        kwargs["user"] = dsn.user
    if dsn.password:
        kwargs["password"] = dsn.password
    return kwargs


def _pg_ensure_database(dsn: DSN) -> None:
    import psycopg
    from psycopg import errors, sql

    if dsn.database == "postgres":
        return
    try:
        admin = psycopg.connect(**_pg_kwargs(dsn, "postgres"), autocommit=True)
    except psycopg.OperationalError:
        # No access to the maintenance database; the target may still exist.
        return
    with admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (dsn.database,)
        ).fetchone()
        if exists is None:
            with contextlib.suppress(errors.DuplicateDatabase):  # created concurrently
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dsn.database)))


def _seed_postgresql(dsn: DSN, data: DemoData) -> dict[str, int]:
    import psycopg
    from psycopg import sql

    _pg_ensure_database(dsn)
    # One connection, one transaction: DDL is transactional on PostgreSQL.
    with psycopg.connect(**_pg_kwargs(dsn, dsn.database)) as conn, conn.cursor() as cur:
        for stmt in _drop_sql():
            cur.execute(stmt)  # static DDL from this module
        for table in TABLES:
            for stmt in create_table_sql("postgresql", table):
                cur.execute(stmt)
        for table in TABLES:
            copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table),
                sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS[table]),
            )
            with cur.copy(copy_sql) as copy:
                for row in data.rows[table]:
                    copy.write_row(row)
            # Keep the identity in step with the explicit ids we inserted.
            cur.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                    "(SELECT COALESCE(MAX(id), 0) + 1 FROM {}), false)"
                ).format(sql.Identifier(table)),
                (table,),
            )
        return _counts(cur.execute, cur.fetchone)


# MySQL / MariaDB -------------------------------------------------------------------------


def _mysql_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _seed_mysql(dsn: DSN, data: DemoData) -> dict[str, int]:
    import pymysql

    kwargs: dict[str, Any] = {
        "host": dsn.host or "localhost",
        "port": dsn.port or 3306,
        "user": dsn.user or None,
        "password": dsn.password,
        "charset": "utf8mb4",
        "autocommit": False,
        "connect_timeout": 10,
    }
    conn = pymysql.connect(**kwargs)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS {_mysql_ident(dsn.database)} "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            conn.select_db(dsn.database)
            cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
            cur.execute("SET SESSION time_zone = '+00:00'")
            for stmt in _drop_sql():
                cur.execute(stmt)
            for table in TABLES:
                for stmt in create_table_sql("mysql", table):
                    cur.execute(stmt)
            for table in TABLES:
                query = _insert_sql(table, "%s")
                rows = data.rows[table]
                for i in range(0, len(rows), 2000):
                    cur.executemany(query, rows[i : i + 2000])
            conn.commit()
            return _counts(cur.execute, cur.fetchone)
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


# SQLite -----------------------------------------------------------------------------------


def _sqlite_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _seed_sqlite(dsn: DSN, data: DemoData) -> dict[str, int]:
    path = Path(dsn.database)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"directory for sqlite database does not exist: {path.parent}")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN")
        try:
            for stmt in _drop_sql():
                conn.execute(stmt)
            for table in TABLES:
                for stmt in create_table_sql("sqlite", table):
                    conn.execute(stmt)
            for table in TABLES:
                conn.executemany(
                    _insert_sql(table, "?"),
                    (tuple(_sqlite_value(v) for v in row) for row in data.rows[table]),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        cur = conn.cursor()
        return _counts(cur.execute, cur.fetchone)
    finally:
        conn.close()


def _counts(
    execute: Callable[..., object], fetchone: Callable[[], Iterable[Any] | None]
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in TABLES:
        execute(f"SELECT COUNT(*) FROM {table}")
        row = fetchone()
        counts[table] = int(next(iter(row))) if row is not None else 0
    return counts
