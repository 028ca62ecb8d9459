"""Sensitive-data discovery: column names, value detectors, whole columns and free text."""

from __future__ import annotations

import base64
import datetime
import itertools
import json
import random
import re
from dataclasses import FrozenInstanceError

import pytest
from faker import Faker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.engine.pii import (
    DEFAULT_SENSITIVITY,
    RESTRICTED_TYPES,
    Proposal,
    SemanticType,
    Sensitivity,
    TextMatch,
    classify_column,
    classify_name,
    detect_value,
    find_in_text,
    redact_text,
)

T = SemanticType

# --------------------------------------------------------------------------------------------
# Types


def test_sensitivity_ranks_and_defaults() -> None:
    ranks = [s.rank() for s in Sensitivity]
    assert ranks == sorted(ranks) == [0, 1, 2, 3]
    assert set(DEFAULT_SENSITIVITY) == set(SemanticType)
    assert {T.NATIONAL_ID, T.CREDIT_CARD, T.IBAN, T.SECRET} == RESTRICTED_TYPES
    assert all(
        DEFAULT_SENSITIVITY[t] is Sensitivity.CONFIDENTIAL for t in set(T) - RESTRICTED_TYPES
    )


def test_proposal_is_frozen() -> None:
    p = Proposal(T.EMAIL, Sensitivity.CONFIDENTIAL, 0.6, "x", False)
    with pytest.raises(FrozenInstanceError):
        p.confidence = 1.0  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# Column names

NAME_POSITIVES: list[tuple[str, str, SemanticType]] = [
    # email
    ("users", "email", T.EMAIL), ("users", "e_mail", T.EMAIL), ("users", "eMail", T.EMAIL),
    ("users", "EMAIL_ADDRESS", T.EMAIL), ("users", "emailAddress", T.EMAIL),
    ("users", "work-email", T.EMAIL), ("users", "mail", T.EMAIL), ("users", "courriel", T.EMAIL),
    ("clientes", "correo_electronico", T.EMAIL), ("kunden", "E-Mail-Adresse", T.EMAIL),
    ("kunden", "kundenemail", T.EMAIL), ("users", "ContactEmail2", T.EMAIL),
    # phone
    ("users", "phone", T.PHONE), ("users", "phoneNumber", T.PHONE), ("users", "tel", T.PHONE),
    ("kunden", "telefonnummer", T.PHONE), ("kunden", "telefon", T.PHONE),
    ("clientes", "telefono_movil", T.PHONE), ("users", "mobile", T.PHONE),
    ("users", "cell", T.PHONE), ("users", "MOBILE_NUMBER", T.PHONE),
    ("klanten", "telefoon", T.PHONE),
    ("clientes", "celular", T.PHONE), ("kunden", "handynummer", T.PHONE),
    # national ids
    ("people", "ssn", T.NATIONAL_ID), ("people", "SSN", T.NATIONAL_ID),
    ("people", "social_security_number", T.NATIONAL_ID),
    ("people", "socialSecurityNumber", T.NATIONAL_ID), ("people", "national_id", T.NATIONAL_ID),
    ("people", "nin", T.NATIONAL_ID), ("people", "sin", T.NATIONAL_ID),
    ("personer", "personnummer", T.NATIONAL_ID), ("kunden", "steuer_id", T.NATIONAL_ID),
    ("clientes", "nif", T.NATIONAL_ID), ("clientes", "dni", T.NATIONAL_ID),
    ("clientes", "cpf", T.NATIONAL_ID), ("clienti", "codice_fiscale", T.NATIONAL_ID),
    ("klanten", "bsn", T.NATIONAL_ID), ("people", "passport_number", T.NATIONAL_ID),
    ("people", "tax_id", T.NATIONAL_ID),
    # cards
    ("payments", "card_number", T.CREDIT_CARD), ("payments", "cc_number", T.CREDIT_CARD),
    ("payments", "pan", T.CREDIT_CARD), ("payments", "credit_card", T.CREDIT_CARD),
    ("payments", "CreditCardNumber", T.CREDIT_CARD), ("zahlungen", "kartennummer", T.CREDIT_CARD),
    ("pagos", "numero_tarjeta", T.CREDIT_CARD), ("payments", "cvv", T.CREDIT_CARD),
    # iban
    ("accounts", "iban", T.IBAN), ("accounts", "IBAN", T.IBAN),
    ("accounts", "bank_account", T.IBAN),
    # names
    ("customers", "first_name", T.PERSON_NAME), ("customers", "lastName", T.PERSON_NAME),
    ("customers", "FullName", T.PERSON_NAME), ("customers", "full-name", T.PERSON_NAME),
    ("customers", "surname", T.PERSON_NAME), ("kunden", "nachname", T.PERSON_NAME),
    ("kunden", "vorname", T.PERSON_NAME), ("clients", "nom", T.PERSON_NAME),
    ("clients", "prenom", T.PERSON_NAME), ("clients", "prénom", T.PERSON_NAME),
    ("clientes", "nombre", T.PERSON_NAME), ("clientes", "apellido", T.PERSON_NAME),
    ("clienti", "cognome", T.PERSON_NAME), ("clientes", "sobrenome", T.PERSON_NAME),
    ("klanten", "achternaam", T.PERSON_NAME), ("customers", "name", T.PERSON_NAME),
    ("auth_user", "name", T.PERSON_NAME), ("employees", "display_name", T.PERSON_NAME),
    ("orders", "customer_name", T.PERSON_NAME), ("payments", "cardholder_name", T.PERSON_NAME),
    ("pedidos", "nombre_cliente", T.PERSON_NAME), ("patients", "NAME", T.PERSON_NAME),
    # street addresses
    ("customers", "street_address", T.STREET_ADDRESS), ("customers", "address", T.STREET_ADDRESS),
    ("orders", "shipping_address", T.STREET_ADDRESS), ("orders", "addr", T.STREET_ADDRESS),
    ("customers", "billing_address_line1", T.STREET_ADDRESS),
    ("kunden", "strasse", T.STREET_ADDRESS),
    ("kunden", "straße", T.STREET_ADDRESS), ("kunden", "lieferadresse", T.STREET_ADDRESS),
    ("clients", "adresse", T.STREET_ADDRESS), ("clientes", "direccion", T.STREET_ADDRESS),
    ("clientes", "dirección_envío", T.STREET_ADDRESS), ("customers", "street", T.STREET_ADDRESS),
    # dates of birth
    ("people", "dob", T.DATE_OF_BIRTH), ("people", "DOB", T.DATE_OF_BIRTH),
    ("people", "date_of_birth", T.DATE_OF_BIRTH), ("people", "birth_date", T.DATE_OF_BIRTH),
    ("people", "birthDate", T.DATE_OF_BIRTH), ("people", "birthday", T.DATE_OF_BIRTH),
    ("kunden", "geburtsdatum", T.DATE_OF_BIRTH), ("clientes", "fecha_nacimiento", T.DATE_OF_BIRTH),
    ("clients", "date_de_naissance", T.DATE_OF_BIRTH),
    ("clienti", "data_di_nascita", T.DATE_OF_BIRTH),
    ("klanten", "geboortedatum", T.DATE_OF_BIRTH),
    # ip addresses
    ("sessions", "ip", T.IP_ADDRESS), ("sessions", "ip_address", T.IP_ADDRESS),
    ("sessions", "ip_addr", T.IP_ADDRESS), ("sessions", "client_ip", T.IP_ADDRESS),
    ("sessions", "ipAddress", T.IP_ADDRESS), ("sessions", "IPV4", T.IP_ADDRESS),
    ("sessions", "last_login_ip", T.IP_ADDRESS), ("requests", "remote_addr", T.IP_ADDRESS),
    # secrets
    ("users", "password", T.SECRET), ("users", "passwd", T.SECRET),
    ("users", "password_hash", T.SECRET), ("users", "hashed_password", T.SECRET),
    ("keys", "api_key", T.SECRET), ("keys", "apiKey", T.SECRET), ("keys", "APIKEY", T.SECRET),
    ("keys", "x-api-key", T.SECRET), ("keys", "token", T.SECRET), ("keys", "access_key", T.SECRET),
    ("keys", "private_key", T.SECRET), ("apps", "client_secret", T.SECRET),
    ("users", "password_reset_token", T.SECRET), ("benutzer", "passwort", T.SECRET),
    ("utilisateurs", "mot_de_passe", T.SECRET), ("usuarios", "contraseña", T.SECRET),
    ("gebruikers", "wachtwoord", T.SECRET), ("users", "refreshToken", T.SECRET),
    # financial
    ("employees", "salary", T.FINANCIAL), ("employees", "salary_cents", T.FINANCIAL),
    ("employees", "wage", T.FINANCIAL), ("employees", "annual_income", T.FINANCIAL),
    ("employees", "compensation", T.FINANCIAL), ("mitarbeiter", "gehalt", T.FINANCIAL),
    ("employes", "salaire", T.FINANCIAL), ("empleados", "salario", T.FINANCIAL),
    ("employees", "bonus", T.FINANCIAL), ("mitarbeiter", "jahresgehalt", T.FINANCIAL),
]  # fmt: skip

NAME_NEGATIVES: list[tuple[str, str]] = [
    ("orders", "status"), ("orders", "total_cents"), ("customers", "country"),
    ("customers", "city"), ("customers", "created_at"), ("products", "description"),
    ("orders", "shipping"), ("orders", "shipping_method"), ("usage", "token_count"),
    ("users", "username"), ("users", "user_name"), ("products", "name"),
    ("products", "product_name"), ("reports", "name"), ("user_groups", "name"),
    ("catalog", "table_name"), ("uploads", "file_name"), ("servers", "host_name"),
    ("servers", "hostname"), ("users", "email_verified_at"), ("users", "is_email_verified"),
    ("users", "email_hash"), ("users", "password_changed_at"), ("users", "has_password"),
    ("llm_calls", "max_tokens"), ("keys", "api_key_id"), ("keys", "public_key"),
    ("devices", "mac_address"), ("customers", "address_id"), ("users", "phone_model"),
    ("apps", "mobile_app_version"), ("payment_cards", "expiry"), ("payment_cards", "brand"),
    ("payment_cards", "card_last4"), ("employees", "salary_currency"), ("mail", "mail_server"),
    ("emails", "email_template"), ("customers", "zip"), ("customers", "postcode"),
    ("public_reports", "title"), ("public_reports", "payload"), ("tickets", "subject"),
    ("pedidos", "nombre_producto"), ("sessions", "ip_count"), ("facturas", "sin_iva"),
    ("t", "id"), ("t", "ipsum"), ("t", "tipping_point"), ("t", "zip_code"), ("t", "microphone"),
]  # fmt: skip


@pytest.mark.parametrize(("table", "column", "expected"), NAME_POSITIVES)
def test_classify_name_positive(table: str, column: str, expected: SemanticType) -> None:
    assert classify_name(table, column) is expected


@pytest.mark.parametrize(("table", "column"), NAME_NEGATIVES)
def test_classify_name_negative(table: str, column: str) -> None:
    assert classify_name(table, column) is None


def test_email_address_and_ip_address_are_not_street_addresses() -> None:
    assert classify_name("t", "email_address") is T.EMAIL
    assert classify_name("t", "ip_address") is T.IP_ADDRESS
    assert classify_name("t", "street_name") is T.STREET_ADDRESS


# --------------------------------------------------------------------------------------------
# Value detectors


def _jwt(header: dict[str, str]) -> str:
    def part(obj: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part(header)}.{part({'sub': '1234567890'})}.c2lnbmF0dXJlLWJ5dGVz"


PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
    "-----END RSA PRIVATE KEY-----"
)

VALUE_POSITIVES: list[tuple[object, SemanticType]] = [
    ("john.doe@example.com", T.EMAIL), ("A.B+tag@mail.example.co.uk", T.EMAIL),
    ("(591)341-7776", T.PHONE), ("206.269.0743x9150", T.PHONE), ("+1-780-563-6083x7783", T.PHONE),
    ("001-780-563-6083", T.PHONE), ("+14155552671", T.PHONE), ("+44 20 7946 0958", T.PHONE),
    ("415-555-2671", T.PHONE), ("+33 6 12 34 56 78", T.PHONE), ("030 1234567", T.PHONE),
    ("(030) 1234567", T.PHONE), ("+49 (30) 123456", T.PHONE),
    ("464-02-4608", T.NATIONAL_ID), ("123-45-6789", T.NATIONAL_ID),
    ("4111111111111111", T.CREDIT_CARD), ("4111 1111 1111 1111", T.CREDIT_CARD),
    ("5500-0000-0000-0004", T.CREDIT_CARD), ("378282246310005", T.CREDIT_CARD),
    ("3782 822463 10005", T.CREDIT_CARD), ("6011111111111117", T.CREDIT_CARD),
    (4111111111111111, T.CREDIT_CARD), (b"4111111111111111", T.CREDIT_CARD),
    ("DE89370400440532013000", T.IBAN), ("DE89 3704 0044 0532 0130 00", T.IBAN),
    ("GB82WEST12345698765432", T.IBAN), ("FR1420041010050500013M02606", T.IBAN),
    ("de89370400440532013000", T.IBAN),
    ("192.168.1.10", T.IP_ADDRESS), ("8.8.8.8", T.IP_ADDRESS), ("2001:db8::1", T.IP_ADDRESS),
    ("a6ec:c31f:3526:3b45:19a2:105d:5080:6f01", T.IP_ADDRESS),
    ("AKIAIOSFODNN7EXAMPLE", T.SECRET), ("ASIAY34FZKBOKMUTVV7A", T.SECRET),
    ("ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8", T.SECRET),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", T.SECRET),
    ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", T.SECRET),
    ("xoxp-123456789012-abcdef", T.SECRET), ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", T.SECRET),
    ("sk_test_4eC39HqLyjWDarjtT1zdp7dc", T.SECRET), ("rk_live_4eC39HqLyjWDarjtT1zdp7dc", T.SECRET),
    ("pk_live_4eC39HqLyjWDarjtT1zdp7dc", T.SECRET),
    ("SG.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg", T.SECRET),
    (_jwt({"alg": "HS256", "typ": "JWT"}), T.SECRET), (PEM, T.SECRET),
    ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
     T.SECRET),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
     "-----END OPENSSH PRIVATE KEY-----", T.SECRET),
    ("aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY", T.SECRET),
    ("pbkdf2_sha256$600000$abcdefgh$abcdefghijklmnopqrstuvwxyz0123456789ABCD=", T.SECRET),
    ("$2b$12$" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0", T.SECRET),
]  # fmt: skip

VALUE_NEGATIVES: list[object] = [
    # not emails
    "a@b", "john@localhost", "@example.com", "john.example.com", "user@@example.com",
    # not phones
    "12345", "4155552671", "2024-01-01", "2024-01-01T10:00:00Z", "2024-01-01 10:30:00",
    "01.02.2024", "12/25/2024", "10:30:00", "$1,234.56", "1.234.567", "1234.5678", "3.14159",
    "1.2.3", "v1.2.3", "ORD-2024-000123", "2024-000123", "12 345 678", 12345, 4155552671,
    # invalid SSNs (and they are not phones either)
    "000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000",
    # bad cards: Luhn-invalid, unknown prefix, too short, all one digit, mixed separators
    "4111111111111112", "4111 1111 1111 1112", "9111111111111111", "411111111111",
    "0000000000000000", "4111-1111 1111-1111",
    # bad IBANs: checksum, length, unknown country
    "DE89370400440532013001", "DE8937040044053201300", "ZZ89370400440532013000",
    # not IPs
    "256.1.1.1", "1.2.3", "10:30", "00:1A:2B:3C:4D:5E",
    # not secrets: UUIDs, hex digests, words, JWT-shaped without alg, short vendor-ish
    "8cda80a3-4b45-4123-917f-6494e8c2d219", "8cda80a34b454123917f6494e8c2d219",
    "b5e60150882c6a3f3d402612f2b07e5a66b5a4355baf43930b7c41202456884a",
    "da39a3ee5e6b4b0d3255bfef95601890afd80709", "d41d8cd98f00b204e9800998ecf8427e",
    "ThisIsAVeryLongCamelCaseIdentifierName", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    _jwt({"typ": "JWT"}), "AKIA1234", "ghp_short", "sk_live_", "hello world",
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END PUBLIC KEY-----",
    # not text at all
    True, False, None, 3.5, b"\x00\x01\x02\xff", datetime.date(1990, 1, 1), ["a@b.com"],
    "",
]  # fmt: skip


@pytest.mark.parametrize(("value", "expected"), VALUE_POSITIVES)
def test_detect_value_positive(value: object, expected: SemanticType) -> None:
    assert expected in detect_value(value)


@pytest.mark.parametrize("value", VALUE_NEGATIVES)
def test_detect_value_negative(value: object) -> None:
    assert detect_value(value) == frozenset()


def test_faker_values_are_detected() -> None:
    f = Faker("en_US")
    Faker.seed(1)
    rnd = random.Random(1)
    for _ in range(200):
        assert T.EMAIL in detect_value(f.email())
        assert T.NATIONAL_ID in detect_value(f.ssn())
        assert T.IP_ADDRESS in detect_value(f.ipv4())
        assert T.IP_ADDRESS in detect_value(f.ipv6())
        card = f.credit_card_number(card_type=rnd.choice(["visa16", "mastercard", "amex"]))
        assert T.CREDIT_CARD in detect_value(card)
        assert T.IBAN in detect_value(f.iban())
        assert detect_value(f.uuid4()) == frozenset()
        assert detect_value(f.sha256()) == frozenset()
        assert detect_value(f.date()) == frozenset()
        assert detect_value(f.iso8601()) == frozenset()


# --------------------------------------------------------------------------------------------
# Whole columns on demo-like data


def _demo() -> dict[str, dict[str, tuple[str, list[object]]]]:
    f = Faker("en_US")
    Faker.seed(1)
    rnd = random.Random(1)
    n = 50

    def body(i: int) -> str:
        text = f.paragraph(nb_sentences=3)
        if i % 2 == 0:
            text += " " + rnd.choice(
                [
                    f"Reach me at {f.email()}.",
                    f"Call me on {f.phone_number()} please.",
                    f"My email is {f.email()} and my phone is {f.phone_number()}.",
                ]
            )
        return text

    def api_key() -> str:
        return rnd.choice(
            [
                "sk_live_" + f.pystr(24, 24),
                "ghp_" + f.pystr(36, 36),
                "AKIA" + f.pystr(16, 16).upper(),
                f"xoxb-{rnd.randint(10**11, 10**12)}-{f.pystr(24, 24)}",
            ]
        )

    def payload() -> str:
        return json.dumps(
            {
                "date": str(f.date()),
                "revenue": rnd.randint(1000, 10**9),
                "ratio": rnd.random(),
                "region": f.state(),
                "count": rnd.randint(1, 10**6),
                "id": f.uuid4(),
                "sha": f.sha1(),
                "generated": f.iso8601(),
            }
        )

    cards = ["visa16", "mastercard", "discover", "amex"]
    return {
        "customers": {
            "full_name": ("varchar(200)", [f.name() for _ in range(n)]),
            "email": ("varchar(200)", [f.email() for _ in range(n)]),
            "phone": ("varchar(40)", [f.phone_number() for _ in range(n)]),
            "ssn": ("varchar(11)", [f.ssn() for _ in range(n)]),
            "date_of_birth": ("date", [f.date_of_birth() for _ in range(n)]),
            "street_address": ("text", [f.street_address() for _ in range(n)]),
            "city": ("text", [f.city() for _ in range(n)]),
            "country": ("text", [f.country() for _ in range(n)]),
        },
        "payment_cards": {
            "card_number": (
                "varchar(19)",
                [f.credit_card_number(card_type=rnd.choice(cards)) for _ in range(n)],
            ),
            "expiry": ("varchar(5)", [f.credit_card_expire() for _ in range(n)]),
            "brand": (
                "varchar(20)",
                [rnd.choice(["visa", "mastercard", "amex"]) for _ in range(n)],
            ),
        },
        "orders": {
            "status": (
                "varchar(10)",
                [rnd.choice(["pending", "paid", "shipped"]) for _ in range(n)],
            ),
            "total_cents": ("integer", [rnd.randint(100, 10_000_000) for _ in range(n)]),
        },
        "support_tickets": {
            "subject": ("varchar(200)", [f.sentence() for _ in range(n)]),
            "body": ("text", [body(i) for i in range(n)]),
        },
        "employees": {
            "work_email": ("varchar(200)", [f.company_email() for _ in range(n)]),
            "salary_cents": ("bigint", [rnd.randint(3_000_000, 30_000_000) for _ in range(n)]),
        },
        "api_credentials": {"api_key": ("text", [api_key() for _ in range(n)])},
        "public_reports": {
            "title": ("varchar(200)", [f.catch_phrase() for _ in range(n)]),
            "payload": ("text", [payload() for _ in range(n)]),
        },
    }


DEMO = _demo()
EXPECTED: dict[tuple[str, str], SemanticType | None] = {
    ("customers", "full_name"): T.PERSON_NAME,
    ("customers", "email"): T.EMAIL,
    ("customers", "phone"): T.PHONE,
    ("customers", "ssn"): T.NATIONAL_ID,
    ("customers", "date_of_birth"): T.DATE_OF_BIRTH,
    ("customers", "street_address"): T.STREET_ADDRESS,
    ("customers", "city"): None,
    ("customers", "country"): None,
    ("payment_cards", "card_number"): T.CREDIT_CARD,
    ("payment_cards", "expiry"): None,
    ("payment_cards", "brand"): None,
    ("orders", "status"): None,
    ("orders", "total_cents"): None,
    ("support_tickets", "subject"): None,
    ("support_tickets", "body"): T.EMAIL,
    ("employees", "work_email"): T.EMAIL,
    ("employees", "salary_cents"): T.FINANCIAL,
    ("api_credentials", "api_key"): T.SECRET,
    ("public_reports", "title"): None,
    ("public_reports", "payload"): None,
}


def test_expected_covers_demo() -> None:
    assert set(EXPECTED) == {(t, c) for t, cols in DEMO.items() for c in cols}


@pytest.mark.parametrize(("table", "column"), sorted(EXPECTED))
def test_classify_demo_column(table: str, column: str) -> None:
    type_name, samples = DEMO[table][column]
    proposal = classify_column(table, column, type_name, samples)
    expected = EXPECTED[(table, column)]
    if expected is None:
        assert proposal is None, proposal
        return
    assert proposal is not None
    assert proposal.sensitivity is DEFAULT_SENSITIVITY[proposal.semantic_type]
    assert 0.0 <= proposal.confidence <= 1.0
    assert proposal.evidence
    if (table, column) == ("support_tickets", "body"):
        assert proposal.free_text
        assert proposal.semantic_type in (T.EMAIL, T.PHONE)
        return
    assert proposal.semantic_type is expected
    assert not proposal.free_text
    assert proposal.confidence >= 0.84  # name and values agree


def test_ssn_evidence_reads_like_a_sentence() -> None:
    p = classify_column("customers", "ssn", "text", DEMO["customers"]["ssn"][1])
    assert p is not None
    assert p.evidence == (
        "column name 'ssn' means a national id; 50 of 50 sampled values look like US SSNs"
    )
    assert p.confidence >= 0.9
    assert p.sensitivity is Sensitivity.RESTRICTED


def test_values_alone_find_pii_in_oddly_named_columns() -> None:
    for column, expected in [
        ("email", T.EMAIL),
        ("ssn", T.NATIONAL_ID),
        ("card_number", T.CREDIT_CARD),
    ]:
        samples = DEMO["customers"].get(column) or DEMO["payment_cards"][column]
        p = classify_column("t", "col_7", "text", samples[1])
        assert p is not None and p.semantic_type is expected
        assert 0.7 <= p.confidence <= 0.9
        assert "column name" not in p.evidence


def test_name_only_and_type_compatibility() -> None:
    p = classify_column("customers", "phone", "varchar(20)", [])
    assert p is not None and p.semantic_type is T.PHONE and p.confidence == 0.6
    assert classify_column("employees", "salary", "text", []) is None  # salary needs a number
    assert classify_column("employees", "salary", "numeric(10,2)", []) is not None
    assert classify_column("people", "date_of_birth", "boolean", []) is None
    assert classify_column("people", "date_of_birth", "float", []) is None
    assert classify_column("people", "dob", "date", []) is not None
    assert classify_column("users", "email", "integer", []) is None


def test_booleans_are_never_proposed() -> None:
    assert classify_column("users", "email", "boolean", [True, False]) is None
    assert classify_column("users", "password", "", [True, False, True]) is None
    assert classify_column("users", "is_admin", "tinyint(1)", [1, 0, 1]) is None


def test_contradicting_values_lower_confidence() -> None:
    p = classify_column("customers", "phone", "text", ["yes", "no", "n/a", "yes", "no"])
    assert p is not None and p.confidence == 0.3 and "only 0 of 5" in p.evidence


def test_value_type_wins_over_a_misleading_name() -> None:
    emails = DEMO["customers"]["email"][1]
    p = classify_column("customers", "phone", "text", emails)
    assert p is not None and p.semantic_type is T.EMAIL and "suggests" in p.evidence


def test_free_text_with_cards_is_restricted() -> None:
    f = Faker("en_US")
    Faker.seed(3)
    rows: list[object] = [
        f.paragraph() + (f" my card is {f.credit_card_number('visa16')}" if i % 3 == 0 else "")
        for i in range(30)
    ]
    p = classify_column("tickets", "notes", "text", rows)
    assert p is not None and p.free_text
    assert p.semantic_type is T.CREDIT_CARD and p.sensitivity is Sensitivity.RESTRICTED


def test_plain_free_text_is_not_proposed() -> None:
    f = Faker("en_US")
    Faker.seed(4)
    assert classify_column("posts", "body", "text", [f.paragraph() for _ in range(40)]) is None


def test_nulls_and_blanks_are_ignored() -> None:
    samples: list[object] = [None, "", "  ", *DEMO["customers"]["ssn"][1][:10]]
    p = classify_column("t", "c", "text", samples)
    assert p is not None and p.semantic_type is T.NATIONAL_ID and "10 of 10" in p.evidence


# --------------------------------------------------------------------------------------------
# Free text

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def test_redacting_ticket_bodies_leaves_no_email_or_phone() -> None:
    f = Faker("en_US")
    Faker.seed(7)
    for _ in range(300):
        email, phone = f.email(), f.phone_number()
        text = f"{f.sentence()} Contact {email} or call {phone} today. {f.sentence()}"
        redacted = redact_text(text)
        assert email not in redacted and phone not in redacted, redacted
        assert not EMAIL_RE.search(redacted)
        assert "[email]" in redacted and "[phone]" in redacted
    for body in DEMO["support_tickets"]["body"][1]:
        assert isinstance(body, str)
        redacted = redact_text(body)
        assert not EMAIL_RE.search(redacted)
        assert not re.search(r"\d{3}\D{0,2}\d{3}\D\d{4}", redacted), redacted


def test_find_in_text_spans_and_types() -> None:
    text = (
        "Mail john.doe@example.com, call (415) 555-2671 or +44 20 7946 0958. "
        "Card 4111-1111-1111-1111, SSN 123-45-6789, IBAN DE89 3704 0044 0532 0130 00. "
        "Key sk_live_4eC39HqLyjWDarjtT1zdp7dc and AKIAIOSFODNN7EXAMPLE; from 10.0.0.1. "
        f"token {_jwt({'alg': 'none'})} done.\n{PEM}\nEnd. Order 2024-01-01, total $1,234.56."
    )
    matches = find_in_text(text)
    assert all(isinstance(m, TextMatch) for m in matches)
    assert [m.start for m in matches] == sorted(m.start for m in matches)
    assert all(a.end <= b.start for a, b in itertools.pairwise(matches))
    found = [(text[m.start : m.end], m.semantic_type) for m in matches]
    assert found == [
        ("john.doe@example.com", T.EMAIL),
        ("(415) 555-2671", T.PHONE),
        ("+44 20 7946 0958", T.PHONE),
        ("4111-1111-1111-1111", T.CREDIT_CARD),
        ("123-45-6789", T.NATIONAL_ID),
        ("DE89 3704 0044 0532 0130 00", T.IBAN),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", T.SECRET),
        ("AKIAIOSFODNN7EXAMPLE", T.SECRET),
        ("10.0.0.1", T.IP_ADDRESS),
        (_jwt({"alg": "none"}), T.SECRET),
        (PEM, T.SECRET),
    ]


def test_redact_text_placeholders() -> None:
    text = "write to a@b.io, SSN 123-45-6789, card 4111 1111 1111 1111, password=hunter2!x"
    assert redact_text(text) == (
        "write to [email], SSN [national_id], card [credit_card], password=[secret]"
    )
    assert redact_text("nothing to see on 2024-01-01 at 10:30, 12345 items") == (
        "nothing to see on 2024-01-01 at 10:30, 12345 items"
    )
    assert redact_text("") == ""


def test_find_in_text_edge_cases() -> None:
    assert find_in_text("qty 2 4111 1111 1111 1111")[0].semantic_type is T.CREDIT_CARD
    assert redact_text("call 415-555-2671 2024-01-01") == "call [phone] 2024-01-01"
    assert redact_text("call me at 4155552671") == "call me at [phone]"
    assert redact_text("order 4155552671 shipped") == "order 4155552671 shipped"
    assert redact_text("id 8cda80a3-4b45-4123-917f-6494e8c2d219") == (
        "id 8cda80a3-4b45-4123-917f-6494e8c2d219"
    )
    truncated = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    assert redact_text("key: " + truncated) == "key: [secret]"


ADVERSARIAL = {
    "letters": "a" * 1_000_000,
    "digits": "1" * 1_000_000,
    "spaced digits": "1 " * 500_000,
    "dashed digits": "1-" * 500_000,
    "card groups": "4111 " * 200_000,
    "dates": "2024-01-01 " * 90_909,
    "ssns": "123-45-6789 " * 83_333,
    "ats": "a@" * 500_000,
    "email soup": "a@a." * 250_000,
    "parens": "(1" * 500_000,
    "pem headers": "-----BEGIN PRIVATE KEY-----" * 37_037,
    "jwt starts": "eyJa." * 200_000,
    "colons": ":" * 1_000_000,
    "hex colons": "abcd:" * 200_000,
    "base64 words": "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY " * 30_303,
    "random": "".join(random.Random(0).choice("aA1-_.@+ :/=()x") for _ in range(1_000_000)),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_find_in_text_finishes_on_adversarial_megabytes(name: str) -> None:
    # No timing assertion (machines are noisy): a backtracking regex would not finish at all;
    # `make bench` reports the speed.
    text = ADVERSARIAL[name]
    assert len(text) >= 999_000
    assert isinstance(redact_text(text), str)


# --------------------------------------------------------------------------------------------
# Never raise

FRAGMENTS = [
    "@", ".", "-", " ", "+", "(", ")", "x", "eyJ", "AKIA", "ghp_", "xoxb-", "sk_live_", "SG.",
    "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----", "DE89", "4111", "123-45-",
    "6789", "a@b.com", "::", "1.2.3.4", "password=", "\n", "\x00", "é", "İ", "ß", "\u200b",
]  # fmt: skip
soup = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=40).map("".join)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(soup, st.text(max_size=300)))
def test_text_functions_never_raise(text: str) -> None:
    matches = find_in_text(text)
    for m in matches:
        assert 0 <= m.start < m.end <= len(text)
    assert all(a.end <= b.start for a, b in itertools.pairwise(matches))
    redacted = redact_text(text)
    assert isinstance(redacted, str)
    assert isinstance(detect_value(text), frozenset)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.binary(max_size=50),
        st.text(max_size=100), st.dates(), st.decimals(allow_nan=False),
    )
)  # fmt: skip
def test_detect_value_never_raises(value: object) -> None:
    assert isinstance(detect_value(value), frozenset)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=20), st.lists(soup, max_size=8))
def test_classifiers_never_raise(
    table: str, column: str, type_name: str, samples: list[str]
) -> None:
    classify_name(table, column)
    p = classify_column(table, column, type_name, samples)
    assert p is None or 0.0 <= p.confidence <= 1.0
