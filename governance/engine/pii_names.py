"""Column-name heuristics: what a column called ``customerEmail`` or ``fecha_nacimiento`` holds.

Names are split into words (separators, camelCase, digits, accents folded; compounds such as
``firstname``, ``phonenumber`` or ``lieferadresse`` are split or recognised), then matched on whole
words and phrases, never substrings: ``description`` is not ``ip`` and ``shipping`` is not ``ip``.

The word that decides is the rightmost match (English compounds put the head noun last:
``password_reset_token`` is a token), and what follows it must not turn the column into metadata
about the value (``email_verified_at``, ``token_count``, ``password_changed_at``, ``address_id``).
Hashes of personal data (``email_hash``) are not the data; ``password_hash`` is still a secret.

Decisions: ``city``, ``country``, ``zip`` and ``postcode`` are not sensitive on their own;
``username``/``user_name`` is an account handle, not a person's name; a bare ``name`` is a person's
name only in person-like tables (customers, users, employees, contacts, patients...).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .pii_values import SemanticType

_T = SemanticType
_CONTEXT = "context"  # a bare "name"-like word: a person's name only in person-like tables

# Each phrase is words separated by spaces; a leading "!" marks a short or ambiguous word that
# only counts at the end of the name (optionally followed by number/address-like words).
_VOCABULARY: dict[SemanticType | str | None, str] = {
    _T.EMAIL: """email, emails, e mail, !mail, emailaddress, email address, mail address,
        e mail address, email adresse, e mail adresse, mail adresse, mailadresse, emailadresse,
        email adres, emailadres, courriel, correo, epost, e post""",
    _T.PHONE: """phone, phones, telephone, !tel, telefon, telefono, telefone, telefoon, !fon,
        !mobile, !mobil, movil, celular, !cell, cellphone, cell phone, !handy, !fax, msisdn,
        contact number, rufnummer, !gsm, !tlf""",
    _T.NATIONAL_ID: """ssn, social security, socialsecurity, national id, nationalid,
        national identifier, !nin, national insurance, !nino, !sin, personnummer,
        fodselsnummer, !cpr, henkilotunnus, steuer id, steuerid, steueridentifikationsnummer,
        steuernummer, sozialversicherungsnummer, !ahv, !nir, securite sociale, !nss, !dni, !nie,
        !nif, !curp, !cpf, codice fiscale, codicefiscale, !bsn, burgerservicenummer, passport,
        passeport, pasaporte, passaporto, reisepass, paspoort, driver license, drivers license,
        driving licence, driving license, driver licence, fuhrerschein, tax id, taxpayer id,
        tax number, !tin, identity number, id card, personalausweis, ausweisnummer, !aadhaar,
        !pesel""",
    _T.CREDIT_CARD: """card number, cardnumber, card no, card num, card nr, cc number, ccnumber,
        cc num, cc no, !ccn, !pan, credit card, creditcard, debit card, kartennummer,
        kreditkarte, kreditkartennummer, !tarjeta, tarjeta credito, carte bancaire, carte credit,
        numero carte, !cartao, cartao credito, carta credito, !cvv, !cvc, card verification""",
    _T.IBAN: """iban, bank account, bankaccount, kontonummer, rekeningnummer, cuenta bancaria,
        compte bancaire, conto corrente""",
    _T.PERSON_NAME: """first name, last name, full name, given name, family name, middle name,
        maiden name, legal name, birth name, surname, surnames, forename, nachname, vorname,
        familienname, prenom, nom famille, apellido, apellidos, cognome, sobrenome, achternaam,
        voornaam, name first, name last, name full, customer name, client name, contact name,
        patient name, employee name, person name, member name, holder name, cardholder name,
        recipient name, sender name, beneficiary name, guardian name, parent name, spouse name,
        owner name, applicant name, candidate name, student name, passenger name, guest name,
        billing name, shipping name, nombre cliente, nome cliente, nom client, nombre completo,
        nome completo, nom complet""",
    _CONTEXT: "name, names, nom, nombre, nome, naam, nickname, display name",
    _T.STREET_ADDRESS: """address, !addr, street, streetaddress, street address, strasse,
        anschrift, adresse, adres, adress, direccion, endereco, indirizzo, calle, !rue,
        logradouro, domicilio, straatnaam, address line""",
    _T.DATE_OF_BIRTH: """!dob, date birth, birth date, birthdate, birthday, birth day,
        geburtsdatum, geburtstag, date naissance, fecha nacimiento, data nascita,
        data nascimento, geboortedatum, fodelsedatum, fodselsdato, birth year, year birth""",
    _T.IP_ADDRESS: """!ip, !ipv, ip address, ipaddress, ip addr, ipaddr, ip adresse, ip adres,
        remote addr, remote address, client addr, peer address, peer addr, source address,
        src addr, server address, host address, local address, remote ip, client ip""",
    _T.SECRET: """password, passwords, passwd, !pwd, passphrase, passwort, kennwort, contrasena,
        mot passe, motdepasse, senha, wachtwoord, losenord, salasana, secret, secrets,
        client secret, api key, apikey, api secret, api token, token, tokens, access token,
        refresh token, auth token, bearer token, access key, secret key, private key,
        signing key, encryption key, session key, credential, credentials, !jwt""",
    _T.FINANCIAL: """salary, salaries, !wage, wages, income, compensation, gehalt, !lohn,
        einkommen, salaire, salario, sueldo, stipendio, retribuzione, salaris, !loon, inkomen,
        bonus, payroll, !pay, net worth, networth, credit score, earnings""",
    # Blockers: these phrases mean "not sensitive", whatever their words would say on their own.
    None: """mac address, macaddress, mac addr, wallet address, memory address, web address,
        contract address, bitcoin address, btc address, eth address, public key, publickey,
        user name, login name, account name, screen name, host name, file name, table name,
        token type, name server""",
}


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words after the deciding word that make the column metadata about the value, not the value.
_META = _wordset("""at on date time ts timestamp datetime count cnt counter length len size
    changed change updated created modified sent set reset verified verification confirmed
    confirmation validated valid validity enabled disabled required opt optin optout consent
    subscribed unsubscribed bounced bounce status state type kind format template subject body
    provider server host domain policy rule rules strength score expires expiry expiration expire
    expired ttl version flag visible visibility id ids uuid ref fk idx index hint mask masked
    redacted last first prefix suffix preview country city region zip postcode code label
    description desc note notes comment source origin attempts attempt tries failures failed
    limit quota usage used category group model brand make os vendor ext extension language lang
    locale currency range band grade level scale period frequency freq unit bucket tier
    notification notifications preference preferences setting settings marketing campaign
    campaigns allowed known field column regex pattern validation check checked algorithm algo
    iterations rounds lookup url link""")
_HASHED = _wordset("hash hashed digest sha sha1 sha256 sha512 md5 fingerprint")
# Words that may follow a "!" word: "tel_no", "mail_address", "ip_v4", "mobile_number".
_STRICT_TAIL = _wordset("""number num no nr nbr nummer numero address addr adresse adres value
    primary secondary main home work personal business mobile""")
# A name that starts with these is a flag or a count: is_email_verified, num_tokens.
_NEGATING_FIRST = _wordset("is has have can should allow allows use uses require needs")
# Immediately before the deciding word, these make it a count: max_tokens, number_of_phones.
_COUNT_BEFORE = _wordset("""num n nb count total max min avg sum number unique distinct used
    remaining input output prompt completion cached""")
# Qualifiers that keep a bare "name" a person's name when the table is about people.
_CONTEXT_BEFORE = _wordset("display nick preferred real")
_PERSON_TABLES = _wordset("""customer client user member employee staff contact person people
    patient student teacher doctor applicant candidate guest passenger subscriber author owner
    driver buyer lead recipient beneficiary profile cardholder traveler traveller volunteer donor
    resident citizen worker kunde kunden mitarbeiter benutzer nutzer personen patienten cliente
    usuario empleado persona paciente alumno funcionario pessoa utente utenti dipendente
    dipendenti clienti pazienti klant klanten gebruiker medewerker persoon utilisateur employe
    personne salarie adherent""")
_TABLE_NOISE = _wordset("""tbl tab t dim fact stg raw v vw view table data info details detail
    master archive backup old new list records record history hist""")
_STOPWORDS = _wordset("of de di du da do del des the")
# German/Dutch compounds end in these: lieferadresse, kundenemail, jahresgehalt.
_SUFFIX_STEMS = (
    "emailadresse", "mailadresse", "adresse", "adres", "strasse", "straat", "telefon",
    "telefoon", "email", "passwort", "wachtwoord", "kennwort", "password", "gehalt", "salaris",
    "einkommen", "geburtsdatum", "nachname", "vorname", "achternaam", "voornaam", "secret",
    "token", "nummer",
)  # fmt: skip
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_FOLD = str.maketrans({"ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "ł": "l"})


@dataclass(frozen=True)
class _Entry:
    words: tuple[str, ...]
    kind: SemanticType | str | None
    strict: bool


def _build() -> tuple[dict[tuple[str, ...], _Entry], frozenset[str]]:
    phrases: dict[tuple[str, ...], _Entry] = {}
    for kind, spec in _VOCABULARY.items():
        for raw in spec.split(","):
            text = raw.strip()
            strict = text.startswith("!")
            words = tuple(text.lstrip("!").split())
            phrases[words] = _Entry(words, kind, strict)
            if len(words) > 1:  # the closed compound: firstname, dateofbirth, apikey
                phrases.setdefault(("".join(words),), _Entry(words, kind, strict))
    known = {w for words in phrases for w in words} | _META | _HASHED | _STRICT_TAIL
    return phrases, frozenset(known)


_PHRASES, _KNOWN = _build()
_MAX_PHRASE = max(len(p) for p in _PHRASES)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _split_compound(word: str) -> list[str]:
    if word in _KNOWN or len(word) < 5:
        return [word]
    for k in range(len(word) - 2, 1, -1):  # prefer the longest known right part
        left, right = word[:k], word[k:]
        if left in _KNOWN and right in _KNOWN:
            return [left, right]
    for stem in _SUFFIX_STEMS:
        if word.endswith(stem) and len(word) - len(stem) >= 3:
            return [word[: -len(stem)], stem]
    return [word]


@lru_cache(maxsize=4096)
def name_words(name: str) -> tuple[str, ...]:
    """Lower-case words of a name: ``customerEMail2`` -> ``('customer', 'e', 'mail', '2')``."""
    words: list[str] = []
    for raw in _WORD.findall(_fold(name)):
        word = raw.lower()
        if word in _STOPWORDS:
            continue
        words.extend(_split_compound(word))
    return tuple(words)


def person_table(table: str) -> bool:
    """Is the table about people (its head noun: ``auth_user``, ``dim_customers``)?"""
    words = [w for w in name_words(table) if w not in _TABLE_NOISE and not w.isdigit()]
    if not words:
        return False
    head = words[-1]
    candidates = {head}
    if head.endswith("ies"):
        candidates.add(head[:-3] + "y")
    if head.endswith("s"):
        candidates.add(head[:-1])
    return bool(candidates & _PERSON_TABLES)


def _resolve(entry: _Entry, start: int, end: int, words: tuple[str, ...], table: str) -> bool:
    kind = entry.kind
    before, after = words[:start], words[end:]
    if words and words[0] in _NEGATING_FIRST:
        return False
    if before and before[-1] in _COUNT_BEFORE and kind is not _T.FINANCIAL:
        return False
    if any(w in _META for w in after):
        return False
    if kind is not _T.SECRET and (
        any(w in _HASHED for w in after) or (before and before[-1] in _HASHED)
    ):
        return False
    if entry.strict and any(not (w in _STRICT_TAIL or w.isdigit()) for w in after):
        return False
    if kind == _CONTEXT:  # product_name, name_en: no; name, display_name: if about people
        if after or (before and before[-1] not in _CONTEXT_BEFORE):
            return False
        return person_table(table)
    return True


@lru_cache(maxsize=4096)
def classify_name(table: str, column: str) -> SemanticType | None:
    """The semantic type a column's name suggests, or None (see module notes)."""
    words = name_words(column)
    matches: list[tuple[int, int, _Entry]] = []
    for start in range(len(words)):
        for size in range(1, min(_MAX_PHRASE, len(words) - start) + 1):
            entry = _PHRASES.get(words[start : start + size])
            if entry is not None:
                matches.append((start, start + size, entry))
    # Rightmost end first, then the longest phrase; a blocker stops the search.
    matches.sort(key=lambda m: (-m[1], m[0]))
    for start, end, entry in matches:
        if entry.kind is None:
            return None
        if _resolve(entry, start, end, words, table):
            if entry.kind == _CONTEXT:
                return SemanticType.PERSON_NAME
            assert isinstance(entry.kind, SemanticType)
            return entry.kind
    return None
