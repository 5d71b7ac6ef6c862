"""Units (organisations) and accounts: creation, bulk import, activation, passwords, TOTP."""

from __future__ import annotations

import csv
import io
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hssk.access.actor import Actor
from hssk.access.policy import (
    FACILITY_UNIT_KINDS,
    NATIONAL_UNIT_KINDS,
    ROLE_ADMIN,
    ROLE_AUDITOR,
    ROLE_CLINICIAN,
    ROLES,
)
from hssk.kernel.text import fold
from hssk.registry.phones import login_phone

UNIT_KINDS = frozenset(
    {"department", "district_centre", "station", "hospital", "polyclinic", "clinic", "external",
     "platform"}
)  # fmt: skip
ACCOUNT_KINDS = frozenset({"staff", "clinician", "citizen", "system"})
# What each kind of account may ask for; a token gets the intersection with what it requests.
DEFAULT_SCOPES: dict[str, tuple[str, ...]] = {
    "citizen": ("patient/*.read", "patient/Observation.write", "patient/FamilyMemberHistory.write",
                "patient/AllergyIntolerance.write"),
    "clinician": ("user/*.read", "user/*.write"),
    "staff": ("user/*.read", "user/*.write"),
    "system": (),
}  # fmt: skip
# Separation of powers: who grants access (admin) or uses it (clinician) never audits it.
INCOMPATIBLE_ROLES = ((ROLE_AUDITOR, ROLE_ADMIN), (ROLE_AUDITOR, ROLE_CLINICIAN))
# The audit trail and sensitive categories: granted by the platform operator only (the CLI,
# audited), to national systems only; never by an administrator.
OPERATOR_SCOPES = frozenset({"system/AuditEvent.read", "system/Sensitive.read"})
_SCOPE_CONTEXT = {"citizen": "patient", "clinician": "user", "staff": "user", "system": "system"}
_USERNAME = re.compile(r"^[A-Za-z0-9._@-]{3,64}$")
MIN_PASSWORD = 10

_hasher = PasswordHasher()


class AccountError(ValueError):
    """A request about units or accounts that cannot be carried out (message says why)."""


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    kind: str
    display_name: str | None
    unit_id: str | None
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    person_id: int | None
    phone: str | None
    active: bool
    activated: bool
    has_password: bool
    has_totp: bool

    def actor(self, scopes: Iterable[str] | None = None, client: str | None = None) -> Actor:
        return Actor(
            account_id=str(self.id),
            kind=self.kind,
            unit_id=self.unit_id,
            roles=frozenset(self.roles),
            scopes=frozenset(self.scopes if scopes is None else scopes),
            person_id=self.person_id,
            client=client,
        )

    def public(self) -> dict[str, Any]:
        """What the API shows about an account (never credentials)."""
        return {
            "id": self.id,
            "username": self.username,
            "kind": self.kind,
            "display_name": self.display_name,
            "unit_id": self.unit_id,
            "roles": list(self.roles),
            "scopes": list(self.scopes),
            "person_id": self.person_id,
            "phone": self.phone,
            "active": self.active,
            "activated": self.activated,
            "totp": self.has_totp,
        }


# --- the console's search key, written with the name ---------------------------------------

_NOT_WORD = re.compile(r"[^0-9a-z]+")


def search_key(*texts: str | None) -> str:
    """Folded words of ``texts`` (no diacritics, đ→d, lower case) separated by one space."""
    return " ".join(_NOT_WORD.split(fold(" ".join(t for t in texts if t)).lower())).strip()


def search_words(text: str) -> list[str]:
    """The distinct words of a search, folded as ``search_key`` folds the accounts."""
    return sorted(set(search_key(text).split()))


def word_prefixes(key: str) -> set[str]:
    """Every prefix of every word of a folded key (the words typed are looked up in these)."""
    return {word[:n] for word in key.split() for n in range(1, len(word) + 1)}


def _search_columns(username: str, display_name: str | None) -> tuple[str, str]:
    """``account.search_key`` and ``search_prefixes`` (as an array literal: the words hold
    letters and digits only) of a username and display name (migration 0407)."""
    key = search_key(username, display_name)
    return key, "{" + ",".join(sorted(word_prefixes(key))) + "}"


_ACCOUNT_COLS = """id, username, kind, display_name, unit_id, roles, scopes, person_id, phone,
    active, activated_at IS NOT NULL, password_hash IS NOT NULL, totp_secret IS NOT NULL"""


def _account(row: tuple[Any, ...] | None) -> Account | None:
    if row is None:
        return None
    return Account(*row[:5], tuple(row[5]), tuple(row[6]), *row[7:])  # type: ignore[arg-type, call-arg]


def get_account(conn: psycopg.Connection[Any], account_id: int | str) -> Account | None:
    try:
        key = int(account_id)
    except (TypeError, ValueError):
        return None
    row = conn.execute(f"SELECT {_ACCOUNT_COLS} FROM account WHERE id = %s", (key,)).fetchone()
    return _account(row)


def find_account(conn: psycopg.Connection[Any], username: str) -> Account | None:
    row = conn.execute(
        f"SELECT {_ACCOUNT_COLS} FROM account WHERE username = %s", (username,)
    ).fetchone()
    return _account(row)


def find_citizen(conn: psycopg.Connection[Any], identifier: str) -> Account | None:
    """A citizen account by CCCD (of its person), phone (its own or its person's verified
    phone) or username."""
    ident = identifier.strip().replace(" ", "")
    row = conn.execute(
        f"""SELECT {_ACCOUNT_COLS} FROM account WHERE kind = 'citizen' AND (
              username = %(i)s OR phone = %(i)s
              OR person_id IN (SELECT id FROM person WHERE cccd = %(i)s OR health_id = %(i)s
                                  OR (phone = %(i)s AND phone_verified)))
            ORDER BY id LIMIT 1""",
        {"i": ident},
    ).fetchone()
    return _account(row)


def provision_citizen(conn: psycopg.Connection[Any], identifier: str) -> Account | None:
    """The citizen account of a resident who never logged in: created on first use when the
    CCCD names exactly one (unmerged, living) person with a verified phone (the population
    register's, or confirmed in person) — the login code then goes to that phone, which proves
    the person holds it. The account keeps no phone of its own: ``code_phone`` reads the
    person's, so a later change by the register is followed."""
    cccd = identifier.strip().replace(" ", "")
    if not re.fullmatch(r"\d{12}", cccd):
        return None
    rows = conn.execute(
        """SELECT id, phone, full_name FROM person
           WHERE (cccd = %(c)s OR health_id = %(c)s) AND merged_into IS NULL
             AND deceased_at IS NULL AND phone IS NOT NULL AND phone_verified LIMIT 2""",
        {"c": cccd},
    ).fetchall()
    if len(rows) != 1:
        return None
    person_id, _phone, name = rows[0]
    username = f"cd.{cccd}"
    row = conn.execute(
        f"""INSERT INTO account (username, kind, display_name, roles, scopes, person_id,
                active, activated_at, search_key, search_prefixes)
            VALUES (%s, 'citizen', %s, '{{}}', %s, %s, true, now(), %s, %s::text[])
            ON CONFLICT (username) DO NOTHING RETURNING {_ACCOUNT_COLS}""",
        (
            username,
            name,
            list(DEFAULT_SCOPES["citizen"]),
            person_id,
            *_search_columns(username, name),
        ),
    ).fetchone()
    return _account(row)


def code_phone(conn: psycopg.Connection[Any], account: Account) -> str | None:
    """The one phone a one-time code for ``account`` goes to (login, activation).

    A citizen's person's verified phone (population register, or confirmed in person) comes
    first; otherwise the account's own phone, which only an operator or administrator sets
    (staff accounts; citizen accounts created at a desk). A phone that came with a clinical
    or partner record never receives a code."""
    if account.kind == "citizen" and account.person_id is not None:
        verified = login_phone(conn, account.person_id)
        if verified:
            return verified
    return account.phone


# --- units ------------------------------------------------------------------------------


def create_unit(
    conn: psycopg.Connection[Any],
    unit_id: str,
    kind: str,
    name: str,
    *,
    parent_id: str | None = None,
    facility_code: str | None = None,
    province_code: str | None = None,
    commune_code: str | None = None,
    commune_code_old: str | None = None,
) -> None:
    """Create (or update) a unit of the hierarchy."""
    if kind not in UNIT_KINDS:
        raise AccountError(
            f"unknown unit kind {kind!r} / loại đơn vị không hợp lệ; use one of "
            f"{', '.join(sorted(UNIT_KINDS))}"
        )
    if parent_id and not conn.execute("SELECT 1 FROM unit WHERE id = %s", (parent_id,)).fetchone():
        raise AccountError(f"parent unit {parent_id!r} does not exist; create it first")
    conn.execute(
        """INSERT INTO unit (id, kind, name, parent_id, facility_code, province_code,
               commune_code, commune_code_old)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
             parent_id = excluded.parent_id, facility_code = excluded.facility_code,
             province_code = excluded.province_code, commune_code = excluded.commune_code,
             commune_code_old = excluded.commune_code_old""",
        (unit_id, kind, name, parent_id, facility_code, province_code, commune_code,
         commune_code_old),
    )  # fmt: skip


def unit_subtree(conn: psycopg.Connection[Any], unit_id: str) -> list[str]:
    """The unit and every unit below it."""
    rows = conn.execute(
        """WITH RECURSIVE t(id) AS (SELECT id FROM unit WHERE id = %s
             UNION SELECT u.id FROM unit u JOIN t ON u.parent_id = t.id)
           SELECT id FROM t""",
        (unit_id,),
    ).fetchall()
    return [r[0] for r in rows]


# --- accounts ---------------------------------------------------------------------------


def check_roles(roles: Iterable[str]) -> list[str]:
    """The roles, sorted; AccountError for an unknown role or roles that may not be held
    together (an auditor is never also an administrator or a clinician)."""
    out = sorted(set(roles))
    bad = [r for r in out if r not in ROLES]
    if bad:
        raise AccountError(f"unknown role(s) {bad}; roles are {', '.join(sorted(ROLES))}")
    for a, b in INCOMPATIBLE_ROLES:
        if a in out and b in out:
            raise AccountError(
                f"vai trò {a} và {b} không được gộp trong một tài khoản / roles {a!r} and "
                f"{b!r} cannot be held by one account (who grants or uses access never audits "
                "it): create two accounts"
            )
    return out


def check_scopes(
    kind: str, unit_kind: str | None, scopes: Iterable[str], *, operator: bool
) -> list[str]:
    """The scopes, sorted, if an account of ``kind`` on a unit of ``unit_kind`` may hold them:
    its own context only (``patient/`` citizens, ``user/`` staff, ``system/`` systems); a
    system account by its unit's kind (facility HIS: read and write; national and platform
    systems: read and write; a department: read only; no other unit); the audit trail and
    sensitive categories (``OPERATOR_SCOPES``) only from the platform operator, to national
    systems."""
    out = sorted(set(scopes))
    context = _SCOPE_CONTEXT[kind]
    for scope in out:
        if not scope.startswith(f"{context}/"):
            raise AccountError(f"a {kind} account holds {context}/… scopes only, not {scope!r}")
        if scope in OPERATOR_SCOPES:
            if not operator:
                raise AccountError(
                    f"{scope} chỉ do người vận hành nền tảng cấp qua CLI / {scope} is granted "
                    "only by the platform operator (hssk access add-account, audited), never "
                    "by an administrator"
                )
            if unit_kind not in NATIONAL_UNIT_KINDS:
                raise AccountError(f"{scope} is for national systems only (unit kind external "
                                   f"or platform), not a {unit_kind} unit")  # fmt: skip
    if kind != "system":
        return out
    mode_ok = {
        **dict.fromkeys(FACILITY_UNIT_KINDS | NATIONAL_UNIT_KINDS, ("read", "write")),
        "department": ("read",),
    }.get(unit_kind or "", ())
    for scope in out:
        mode = scope.rpartition(".")[2]
        reads = mode == "read" or bool(mode and set(mode) <= set("rs"))
        if not (("read" in mode_ok and reads) or "write" in mode_ok):
            raise AccountError(
                f"a system account of a {unit_kind or 'missing'} unit cannot hold {scope!r}: "
                "facility, national and platform systems read and write; a department's "
                "systems read only; other units have no system accounts"
            )
    return out


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(
            f"mật khẩu quá ngắn / password too short: at least {MIN_PASSWORD} characters"
        )
    return _hasher.hash(password)


def check_password(stored: str | None, password: str) -> bool:
    if not stored:
        _hasher.hash("timing-equaliser")  # same cost whether or not the account has one
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def create_account(
    conn: psycopg.Connection[Any],
    username: str,
    kind: str,
    *,
    operator: bool = False,
    unit_id: str | None = None,
    roles: Iterable[str] = (),
    scopes: Iterable[str] | None = None,
    person_id: int | None = None,
    phone: str | None = None,
    display_name: str | None = None,
    password: str | None = None,
    active: bool = True,
) -> Account:
    """Create one account (activated when ``active``). ``operator``: the platform operator's
    CLI, the only caller that may grant ``OPERATOR_SCOPES``."""
    if not _USERNAME.match(username or ""):
        raise AccountError(
            f"invalid username {username!r}: 3-64 letters, digits or . _ @ - / tên đăng nhập"
        )
    if kind not in ACCOUNT_KINDS:
        raise AccountError(f"unknown account kind {kind!r}; use {', '.join(sorted(ACCOUNT_KINDS))}")
    if kind != "citizen" and not unit_id:
        raise AccountError(f"a {kind} account needs a unit (unit_id)")
    unit = (
        conn.execute("SELECT kind FROM unit WHERE id = %s", (unit_id,)).fetchone()
        if unit_id
        else None
    )
    if unit_id and unit is None:
        raise AccountError(f"unit {unit_id!r} does not exist")
    role_list = check_roles(roles)
    scope_list = check_scopes(kind, unit[0] if unit else None,
                              DEFAULT_SCOPES[kind] if scopes is None else scopes,
                              operator=operator)  # fmt: skip
    pw = hash_password(password) if password else None
    try:
        row = conn.execute(
            """INSERT INTO account (username, kind, display_name, unit_id, roles, scopes,
                   person_id, phone, password_hash, password_set_at, active, activated_at,
                   search_key, search_prefixes)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,
                       CASE WHEN %s::text IS NULL THEN NULL ELSE now() END,
                       %s, CASE WHEN %s THEN now() END, %s, %s::text[])
               RETURNING id""",
            (username, kind, display_name, unit_id, role_list, scope_list, person_id, phone,
             pw, pw, active, active, *_search_columns(username, display_name)),
        ).fetchone()  # fmt: skip
    except psycopg.errors.UniqueViolation as exc:
        raise AccountError(f"username {username!r} is taken / tên đăng nhập đã tồn tại") from exc
    acc = get_account(conn, row[0])  # type: ignore[index]
    assert acc is not None
    return acc


def set_display_name(
    conn: psycopg.Connection[Any], account: Account, display_name: str | None
) -> None:
    """Rename an account; its search key follows in the same statement."""
    conn.execute(
        """UPDATE account SET display_name = %s, search_key = %s, search_prefixes = %s::text[]
           WHERE id = %s""",
        (display_name, *_search_columns(account.username, display_name), account.id),
    )


def set_password(conn: psycopg.Connection[Any], account_id: int, password: str) -> None:
    conn.execute(
        """UPDATE account SET password_hash = %s, password_set_at = now(), failed_logins = 0,
             locked_until = NULL WHERE id = %s""",
        (hash_password(password), account_id),
    )


def set_active(
    conn: psycopg.Connection[Any], account_id: int, active: bool, reason: str | None = None
) -> bool:
    """Enable or disable an account; disabling revokes its refresh tokens."""
    cur = conn.execute(
        """UPDATE account SET active = %s,
             disabled_at = CASE WHEN %s THEN NULL ELSE now() END,
             disabled_reason = CASE WHEN %s THEN NULL ELSE %s END,
             activated_at = CASE WHEN %s THEN coalesce(activated_at, now()) ELSE activated_at END
           WHERE id = %s""",
        (active, active, active, reason, active, account_id),
    )
    if not active:
        revoke_refresh_tokens(conn, account_id)
    # Every process hears of the change at commit (migration 0408, account_disabled); this one
    # asks again at the account's next request whenever the announcement reaches it.
    _status.pop(str(account_id), None)
    return cur.rowcount == 1


def revoke_refresh_tokens(conn: psycopg.Connection[Any], account_id: int) -> int:
    cur = conn.execute(
        "UPDATE refresh_token SET revoked_at = now() WHERE account_id = %s AND revoked_at IS NULL",
        (account_id,),
    )
    return cur.rowcount


def enroll_totp(conn: psycopg.Connection[Any], account_id: int, issuer: str = "HSSK") -> str:
    """Give the account a new TOTP secret; returns the otpauth:// URI for the app."""
    secret = pyotp.random_base32()
    row = conn.execute(
        "UPDATE account SET totp_secret = %s WHERE id = %s RETURNING username",
        (secret, account_id),
    ).fetchone()
    if row is None:
        raise AccountError(f"no account {account_id}")
    return pyotp.TOTP(secret).provisioning_uri(name=row[0], issuer_name=issuer)


# --- bulk import --------------------------------------------------------------------------

IMPORT_COLUMNS = ("username", "kind", "display_name", "unit_id", "roles", "phone", "cccd")


@dataclass
class ImportResult:
    created: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (line, username, why)


_STAGE = """CREATE TEMP TABLE account_stage (
    line int, username text, kind text, display_name text, unit_id text, roles text,
    phone text, cccd text, search_key text, search_prefixes text) ON COMMIT DROP"""

_REJECTS = """
SELECT line, coalesce(username, ''), CASE
  WHEN username IS NULL OR username !~ '^[A-Za-z0-9._@-]{3,64}$'
    THEN 'invalid username (3-64 letters, digits or . _ @ -)'
  WHEN kind IS NULL OR NOT (kind = ANY(%(kinds)s)) THEN 'unknown kind ' || coalesce(kind, '')
  WHEN kind <> 'citizen' AND unit_id IS NULL THEN 'a ' || kind || ' account needs unit_id'
  WHEN unit_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM unit u WHERE u.id = s.unit_id)
    THEN 'unknown unit ' || unit_id
  WHEN EXISTS (SELECT 1 FROM unnest(string_to_array(coalesce(roles, ''), ';')) r
               WHERE r <> '' AND NOT (r = ANY(%(roles)s))) THEN 'unknown role in ' || roles
  WHEN 'auditor' = ANY(string_to_array(roles, ';'))
       AND string_to_array(roles, ';') && ARRAY['admin', 'clinician']
    THEN 'an auditor cannot also be admin or clinician (create two accounts): ' || roles
  WHEN EXISTS (SELECT 1 FROM account a WHERE a.username = s.username)
    THEN 'username already exists'
  WHEN row_number() OVER (PARTITION BY username ORDER BY line) > 1
    THEN 'username repeated in the file (first one kept)'
END AS why
FROM account_stage s
"""


def import_accounts(
    conn: psycopg.Connection[Any], source: Path | str | io.TextIOBase
) -> ImportResult:
    """Create accounts from a CSV (header: username,kind,display_name,unit_id,roles,phone,cccd;
    roles separated by ';'). All-or-nothing per row: bad rows are reported, good ones created
    inactive, to be activated with a one-time code. Loads with COPY, checks set-based."""
    if isinstance(source, (str, Path)):
        with open(source, encoding="utf-8-sig", newline="") as fh:
            return import_accounts(conn, fh)  # type: ignore[arg-type]
    reader = csv.DictReader(source)  # type: ignore[arg-type]
    missing = [c for c in ("username", "kind") if c not in (reader.fieldnames or ())]
    if missing:
        raise AccountError(
            f"CSV header lacks {missing}; expected columns: {', '.join(IMPORT_COLUMNS)}"
        )
    conn.execute(_STAGE)
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY account_stage (line, username, kind, display_name, unit_id, roles, phone, cccd,"
            " search_key, search_prefixes) FROM STDIN"
        ) as copy,
    ):
        for n, rec in enumerate(reader, start=2):
            row = [(rec.get(c) or "").strip() or None for c in IMPORT_COLUMNS]
            copy.write_row([n, *row, *_search_columns(row[0] or "", row[2])])
    params = {"kinds": sorted(ACCOUNT_KINDS), "roles": sorted(ROLES)}
    conn.execute(
        f"CREATE TEMP TABLE account_reject ON COMMIT DROP AS "
        f"SELECT * FROM ({_REJECTS}) r WHERE why IS NOT NULL",
        params,
    )
    result = ImportResult()
    result.errors = [
        (int(r[0]), r[1], r[2])
        for r in conn.execute("SELECT * FROM account_reject ORDER BY 1").fetchall()
    ]
    scopes_case = " ".join(f"WHEN '{k}' THEN %({k})s::text[]" for k in sorted(ACCOUNT_KINDS))
    cur2 = conn.execute(
        f"""INSERT INTO account (username, kind, display_name, unit_id, roles, scopes,
               person_id, phone, active, search_key, search_prefixes)
            SELECT s.username, s.kind, s.display_name, s.unit_id,
                   array_remove(string_to_array(coalesce(s.roles, ''), ';'), ''),
                   CASE s.kind {scopes_case} END,
                   (SELECT p.id FROM person p WHERE p.cccd = s.cccd ORDER BY p.id LIMIT 1),
                   s.phone, false, s.search_key, s.search_prefixes::text[]
            FROM account_stage s
            WHERE s.line NOT IN (SELECT line FROM account_reject)""",
        {k: list(v) for k, v in DEFAULT_SCOPES.items()},
    )
    result.created = cur2.rowcount
    conn.execute("DROP TABLE account_stage")
    conn.execute("DROP TABLE account_reject")
    return result


# --- bulk units -----------------------------------------------------------------------------

UNIT_COLUMNS = ("id", "kind", "name", "parent_id", "facility_code", "gln", "province_code",
                "commune_code", "commune_code_old", "district_code_old")  # fmt: skip

_UNIT_REJECTS = """
SELECT line, coalesce(id, ''), CASE
  WHEN id IS NULL OR id !~ '^[A-Za-z0-9._-]{2,32}$' THEN 'invalid id (2-32 letters, digits . _ -)'
  WHEN kind IS NULL OR NOT (kind = ANY(%(kinds)s)) THEN 'unknown kind ' || coalesce(kind, '')
  WHEN name IS NULL THEN 'name is required'
  WHEN facility_code IS NOT NULL AND facility_code !~ '^[0-9]{5}$'
    THEN 'facility_code must be 5 digits (mã CSKCB)'
  WHEN gln IS NOT NULL AND gln !~ '^[0-9]{13}$' THEN 'gln must be 13 digits'
  WHEN parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM unit u WHERE u.id = s.parent_id)
       AND NOT EXISTS (SELECT 1 FROM unit_stage t WHERE t.id = s.parent_id)
    THEN 'unknown parent ' || parent_id
  WHEN row_number() OVER (PARTITION BY id ORDER BY line) > 1 THEN 'id repeated in the file'
  WHEN facility_code IS NOT NULL
       AND row_number() OVER (PARTITION BY facility_code ORDER BY line) > 1
    THEN 'facility_code repeated in the file'
  WHEN EXISTS (SELECT 1 FROM unit u WHERE u.facility_code = s.facility_code AND u.id <> s.id)
    THEN 'facility_code already used by another unit'
END AS why
FROM unit_stage s
"""


def import_units(conn: psycopg.Connection[Any], source: Path | str | io.TextIOBase) -> ImportResult:
    """Create or update units from a CSV (header: id,kind,name,parent_id,facility_code,gln,
    province_code,commune_code,commune_code_old,district_code_old). COPY, set-based checks;
    bad rows are reported and skipped."""
    if isinstance(source, (str, Path)):
        with open(source, encoding="utf-8-sig", newline="") as fh:
            return import_units(conn, fh)  # type: ignore[arg-type]
    reader = csv.DictReader(source)  # type: ignore[arg-type]
    missing = [c for c in ("id", "kind", "name") if c not in (reader.fieldnames or ())]
    if missing:
        raise AccountError(f"CSV header lacks {missing}; expected: {', '.join(UNIT_COLUMNS)}")
    cols = ", ".join(UNIT_COLUMNS)
    conn.execute(
        f"CREATE TEMP TABLE unit_stage (line int, {' text, '.join(UNIT_COLUMNS)} text) "
        "ON COMMIT DROP"
    )
    with conn.cursor() as cur, cur.copy(f"COPY unit_stage (line, {cols}) FROM STDIN") as copy:
        for n, rec in enumerate(reader, start=2):
            copy.write_row([n, *((rec.get(c) or "").strip() or None for c in UNIT_COLUMNS)])
    conn.execute(
        f"CREATE TEMP TABLE unit_reject ON COMMIT DROP AS "
        f"SELECT * FROM ({_UNIT_REJECTS}) r WHERE why IS NOT NULL",
        {"kinds": sorted(UNIT_KINDS)},
    )
    result = ImportResult()
    result.errors = [(int(r[0]), r[1], r[2])
                     for r in conn.execute("SELECT * FROM unit_reject ORDER BY 1").fetchall()]  # fmt: skip
    updates = ", ".join(f"{c} = excluded.{c}" for c in UNIT_COLUMNS[1:])
    cur2 = conn.execute(
        f"""INSERT INTO unit ({cols}) SELECT {cols} FROM unit_stage
            WHERE line NOT IN (SELECT line FROM unit_reject)
            ON CONFLICT (id) DO UPDATE SET {updates}"""
    )
    result.created = cur2.rowcount
    conn.execute("DROP TABLE unit_stage")
    conn.execute("DROP TABLE unit_reject")
    return result


# --- is a token's account still enabled? -------------------------------------------------

# Each process keeps the statuses it asked until the database announces a change: migration
# 0408 notifies STATUS_CHANNEL at the commit of every change of ``active`` or ``disabled_at``,
# whoever makes it (this or another web worker, the CLI), and each check first reads what was
# announced on the process's own connection. A disabled account is thus refused at its next
# request in every process. STATUS_TTL only bounds what announcements missed while the
# connection was lost could leave (a new connection forgets everything kept).
STATUS_CHANNEL = "hssk_account_status"
STATUS_TTL = 30.0
_status: dict[str, tuple[float, bool]] = {}


def account_disabled(db: Any, account_id: str) -> bool:
    """Whether an account was disabled: asked once per process, then kept until the database
    announces a change of its status. ``db`` is a Database (its ``url``)."""
    if not account_id.isdigit() or len(account_id) > 18:
        return False  # not a database account (the platform, test actors)
    with _status_lock:
        try:
            return _status_of(db.url, account_id)
        except psycopg.OperationalError:  # the server restarted: connect again, once
            broken = _status_conns.pop(db.url, None)
            if broken is not None:
                broken.close()
            return _status_of(db.url, account_id)


# The status is asked on a connection of its own, not the request pool: a request already
# holds a pooled connection when its actor is resolved, so under load every pooled connection
# could be held by a request waiting for a second one until the pool's timeout. Under
# _status_lock: the announcements are read, and the status asked, in order on one connection
# (an announcement is never read before the query that could have missed its change), and
# concurrent requests for one account ask once.
_status_lock = threading.Lock()
_status_conns: dict[str, psycopg.Connection[Any]] = {}


def _status_of(url: str, account_id: str) -> bool:
    conn = _status_conns.get(url)
    if conn is None or conn.closed:
        conn = psycopg.connect(url, autocommit=True)
        conn.execute(f"LISTEN {STATUS_CHANNEL}")
        _status_conns[url] = conn
        _status.clear()  # changes announced before it listened were not heard
    for note in conn.notifies(timeout=0):  # what arrived since the last check; no waiting
        _status.pop(note.payload, None)
    now = time.monotonic()
    hit = _status.get(account_id)
    if hit is not None and now - hit[0] < STATUS_TTL:
        return hit[1]
    row = conn.execute(
        "SELECT NOT active AND disabled_at IS NOT NULL FROM account WHERE id = %s",
        (int(account_id),),
    ).fetchone()
    disabled = bool(row and row[0])
    if len(_status) > 100_000:
        _status.clear()
    _status[account_id] = (now, disabled)
    return disabled
