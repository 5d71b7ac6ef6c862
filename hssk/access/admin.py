"""What an administrator may do to units, accounts and keys: the one set of rules behind
``/api/v1`` (units, accounts) and the admin console (``/admin``).

An administrator manages their own unit and every unit below it. Units of national systems
(``external``, ``platform``) and the auditor role come from the platform operator only
(``hssk access``, which calls ``accounts`` directly). Every change is audited with the same
action names as the operator's commands; every refusal is audited too. Refusals raise
:class:`AdminError` with the HTTP status to answer and the reason in Vietnamese and English.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from hssk.access import accounts, auth, signing
from hssk.access.actor import Actor
from hssk.access.audit import record as audit
from hssk.access.policy import (
    ROLE_ADMIN,
    ROLE_AUDITOR,
    ROLE_CLINICIAN,
    ROLE_STATION,
    ROLE_SUPERVISOR,
)

# National and platform units speak for national systems: the platform operator creates them.
OPERATOR_UNIT_KINDS = frozenset({"external", "platform"})
# Roles an administrator may give (the auditor role is the operator's).
GRANTABLE_ROLES = (ROLE_CLINICIAN, ROLE_STATION, ROLE_SUPERVISOR, ROLE_ADMIN)
ADMIN_ACCOUNT_KINDS = ("staff", "clinician", "system")  # citizens come with their first login


class AdminError(Exception):
    """A refused or impossible administration request: ``status`` (400, 403, 404, 409) and
    the reason in Vietnamese (``vi``) and English (``en``)."""

    def __init__(self, status: int, vi: str, en: str | None = None) -> None:
        self.status, self.vi, self.en = status, vi, en or vi
        super().__init__(vi if self.en == vi else f"{vi} / {self.en}")

    def text(self, lang: str) -> str:
        return self.en if lang == "en" else self.vi


def _refuse(
    conn: psycopg.Connection[Any], actor: Actor, action: str, vi: str, en: str, **what: Any
) -> AdminError:
    """Audit a refusal; the error to raise."""
    audit(conn, actor, action, outcome="deny", basis="deny", detail={"reason": en, **what})
    return AdminError(403, f"không được phép: {vi}", f"forbidden: {en}")


def _invalid(exc: Exception) -> AdminError:
    return AdminError(400, str(exc))


def is_admin(actor: Actor) -> bool:
    """Whether ``actor`` administers a unit (the admin console's audience)."""
    return _is_platform(actor) or (ROLE_ADMIN in actor.roles and bool(actor.unit_id))


def _is_platform(actor: Actor) -> bool:
    return actor.kind == "system" and actor.account_id == "platform"


def managed_units(conn: psycopg.Connection[Any], actor: Actor, action: str) -> set[str]:
    """Units ``actor`` manages (their unit and below; every unit for the platform);
    AdminError 403 (audited) for anyone who is not an administrator."""
    if _is_platform(actor):
        return {r[0] for r in conn.execute("SELECT id FROM unit").fetchall()}
    if not is_admin(actor):
        raise _refuse(conn, actor, action, "chỉ dành cho quản trị viên", "administrators only")
    assert actor.unit_id is not None
    return set(accounts.unit_subtree(conn, actor.unit_id))


# --- units ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """A unit as its administrator sees it."""

    id: str
    kind: str
    name: str
    parent_id: str | None
    facility_code: str | None
    province_code: str | None
    commune_code: str | None
    commune_code_old: str | None
    active: bool
    keys: tuple[dict[str, Any], ...]

    def public(self) -> dict[str, Any]:
        """What the API lists (keys counted, never their material)."""
        out = {k: v for k, v in asdict(self).items() if k != "keys"}
        out["keys"] = len(self.keys)
        return out


@dataclass(frozen=True)
class UnitSpec:
    """What an administrator sets on a unit."""

    id: str
    kind: str
    name: str
    parent_id: str | None = None
    facility_code: str | None = None
    province_code: str | None = None
    commune_code: str | None = None
    commune_code_old: str | None = None


_UNIT_COLS = """id, kind, name, parent_id, facility_code, province_code, commune_code,
    commune_code_old, active, public_keys"""


def _unit(row: tuple[Any, ...]) -> Unit:
    return Unit(*row[:9], tuple(row[9] or ()))  # type: ignore[call-arg]


def list_units(conn: psycopg.Connection[Any], actor: Actor) -> list[Unit]:
    """The units ``actor`` manages, by id."""
    mine = sorted(managed_units(conn, actor, "unit-list"))
    rows = conn.execute(
        f"SELECT {_UNIT_COLS} FROM unit WHERE id = ANY(%s) ORDER BY id", (mine,)
    ).fetchall()
    return [_unit(r) for r in rows]


def get_unit(conn: psycopg.Connection[Any], actor: Actor, unit_id: str) -> Unit:
    """One managed unit; AdminError 404 when absent or not managed (the same answer)."""
    mine = managed_units(conn, actor, "unit-read")
    row = conn.execute(f"SELECT {_UNIT_COLS} FROM unit WHERE id = %s", (unit_id,)).fetchone()
    if row is None or unit_id not in mine:
        raise AdminError(404, f"không có đơn vị {unit_id!r} trong các đơn vị bạn quản lý",
                         f"no unit {unit_id!r} among those you manage")  # fmt: skip
    return _unit(row)


def _taken(conn: psycopg.Connection[Any], spec: UnitSpec, *, new: bool) -> None:
    """A unit never takes over another's id (creation) or facility code."""
    if new and conn.execute("SELECT 1 FROM unit WHERE id = %s", (spec.id,)).fetchone():
        raise AdminError(409, f"mã đơn vị {spec.id!r} đã tồn tại; chọn mã khác",
                         f"unit id {spec.id!r} already exists; choose another")  # fmt: skip
    if (
        spec.facility_code
        and conn.execute(
            "SELECT 1 FROM unit WHERE facility_code = %s AND id <> %s",
            (spec.facility_code, spec.id),
        ).fetchone()
    ):
        raise AdminError(409, f"mã cơ sở (CSKCB) {spec.facility_code} đã thuộc đơn vị khác",
                         f"facility code {spec.facility_code} already exists; choose "
                         "another")  # fmt: skip


def create_unit(conn: psycopg.Connection[Any], actor: Actor, spec: UnitSpec) -> Unit:
    """A new unit under one the administrator manages."""
    mine = managed_units(conn, actor, "unit-create")
    if spec.parent_id not in mine:
        raise _refuse(conn, actor, "unit-create", "đơn vị cấp trên phải là đơn vị bạn quản lý",
                      "the parent must be a unit you manage", unit=spec.id)  # fmt: skip
    if spec.kind in OPERATOR_UNIT_KINDS:
        raise _refuse(conn, actor, "unit-create",
                      f"đơn vị loại {spec.kind} do người vận hành nền tảng tạo (hssk access add-unit)",
                      f"units of kind {spec.kind} are created by the platform operator "
                      "(hssk access add-unit)", unit=spec.id)  # fmt: skip
    _taken(conn, spec, new=True)
    _save_unit(conn, spec)
    audit(conn, actor, "unit-create", outcome="allow", basis="role", detail=asdict(spec))
    return get_unit(conn, actor, spec.id)


def update_unit(conn: psycopg.Connection[Any], actor: Actor, spec: UnitSpec) -> Unit:
    """Change a managed unit: its name, codes, kind (not a national one) and parent (another
    managed unit, never one below it); the administrator's own unit keeps its place."""
    before = get_unit(conn, actor, spec.id)
    mine = managed_units(conn, actor, "unit-update")
    if spec.kind in OPERATOR_UNIT_KINDS or before.kind in OPERATOR_UNIT_KINDS:
        raise _refuse(conn, actor, "unit-update",
                      "đơn vị của hệ thống quốc gia do người vận hành nền tảng sửa",
                      "units of national systems are changed by the platform operator",
                      unit=spec.id)  # fmt: skip
    if spec.parent_id != before.parent_id:
        below = set(accounts.unit_subtree(conn, spec.id))
        if spec.id == actor.unit_id or spec.parent_id not in mine or spec.parent_id in below:
            raise _refuse(conn, actor, "unit-update",
                          "đơn vị cấp trên mới phải là đơn vị bạn quản lý, không nằm dưới đơn vị này",
                          "the new parent must be a unit you manage, not one below this unit",
                          unit=spec.id)  # fmt: skip
    _taken(conn, spec, new=False)
    _save_unit(conn, spec)
    changes = {k: v for k, v in asdict(spec).items() if getattr(before, k) != v}
    audit(conn, actor, "unit-update", outcome="allow", basis="role",
          detail={"unit": spec.id, "changes": changes})  # fmt: skip
    return get_unit(conn, actor, spec.id)


def _save_unit(conn: psycopg.Connection[Any], spec: UnitSpec) -> None:
    fields = {k: v for k, v in asdict(spec).items() if k not in ("id", "kind", "name")}
    try:
        accounts.create_unit(conn, spec.id, spec.kind, spec.name, **fields)
    except accounts.AccountError as exc:
        raise _invalid(exc) from None


# --- keys and certificates -----------------------------------------------------------------


def add_key(
    conn: psycopg.Connection[Any], actor: Actor, unit_id: str, data: bytes
) -> dict[str, Any]:
    """Register a public key or X.509 certificate for a managed unit (its entry, without the
    certificate's bytes). A new key is how a unit's key is rotated: the old one is then revoked."""
    if unit_id not in managed_units(conn, actor, "key-add"):
        raise _refuse(conn, actor, "key-add", "không phải đơn vị bạn quản lý",
                      "not a unit you manage", unit=unit_id)  # fmt: skip
    try:
        entry = signing.register_key(conn, unit_id, data)
    except signing.KeyError_ as exc:
        raise AdminError(400, f"khóa hoặc chứng thư không đọc được: {exc}", str(exc)) from None
    audit(conn, actor, "key-add", outcome="allow", basis="role",
          detail={"unit": unit_id, "kid": entry["kid"]})  # fmt: skip
    return {k: v for k, v in entry.items() if k != "certificate"}


def revoke_key(conn: psycopg.Connection[Any], actor: Actor, unit_id: str, kid: str) -> None:
    """Revoke one key of a managed unit (signatures and assertions made with it are refused
    from now on)."""
    if unit_id not in managed_units(conn, actor, "key-revoke"):
        raise _refuse(conn, actor, "key-revoke", "không phải đơn vị bạn quản lý",
                      "not a unit you manage", unit=unit_id)  # fmt: skip
    if not signing.revoke_key(conn, unit_id, kid):
        raise AdminError(404, f"không có khóa đang dùng {kid!r} của đơn vị {unit_id}",
                         f"no active key {kid!r} of unit {unit_id}")  # fmt: skip
    audit(conn, actor, "key-revoke", outcome="allow", basis="role",
          detail={"unit": unit_id, "kid": kid})  # fmt: skip


# --- accounts ------------------------------------------------------------------------------


def managed_account(
    conn: psycopg.Connection[Any], actor: Actor, account_id: int, action: str
) -> accounts.Account:
    """An account of a managed unit; AdminError 404 for one that is absent or not managed (the
    same answer), 403 for a change to the administrator's own account."""
    mine = managed_units(conn, actor, action)
    acc = accounts.get_account(conn, account_id)
    if acc is not None and str(acc.id) == actor.account_id and action != "account-read":
        raise _refuse(conn, actor, action, "quản trị viên không tự sửa tài khoản của mình",
                      "administrators do not change their own account")  # fmt: skip
    if acc is None or acc.unit_id not in mine:
        audit(conn, actor, action, outcome="deny", basis="deny",
              detail={"account": account_id, "reason": "not an account you manage"})  # fmt: skip
        raise AdminError(404, f"không có tài khoản {account_id} trong các tài khoản bạn quản lý",
                         f"no account {account_id} among those you manage")  # fmt: skip
    return acc


def list_accounts(
    conn: psycopg.Connection[Any],
    actor: Actor,
    *,
    unit_id: str | None = None,
    search: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[accounts.Account]:
    """Accounts of the managed units (of ``unit_id`` only, when given), by id. ``search``
    finds the accounts with a word of the username or display name starting with each word
    typed, diacritics and case aside ("nguyen van an" finds "Nguyễn Văn An"), or whose phone
    holds the digits typed."""
    mine = managed_units(conn, actor, "account-list")
    units = sorted(mine & {unit_id}) if unit_id else sorted(mine)
    words = accounts.search_words(search or "")
    digits = "".join(ch for ch in search or "" if ch.isdigit())
    where = "TRUE"
    if words:  # the keys are written with the names (accounts): a search only reads
        where = "search_prefixes @> %(w)s"
        if len(digits) >= 3 and _PHONE.fullmatch(search or ""):  # '0912 000 777', '+84…'
            where = f"({where} OR phone LIKE %(p)s)"
    rows = conn.execute(
        f"""SELECT id FROM account WHERE unit_id = ANY(%(u)s) AND {where}
           ORDER BY id LIMIT %(l)s OFFSET %(o)s""",
        {"u": units, "w": words, "p": f"%{digits}%", "l": limit, "o": offset},
    ).fetchall()
    return [a for r in rows if (a := accounts.get_account(conn, r[0]))]


_PHONE = re.compile(r"[\d\s+().-]+")


def _no_auditor_grant(
    conn: psycopg.Connection[Any], actor: Actor, roles: list[str] | None, action: str
) -> None:
    """Administrators never make auditors: who grants access does not choose who reviews it."""
    if roles and ROLE_AUDITOR in roles:
        raise _refuse(conn, actor, action,
                      "vai trò kiểm toán do người vận hành nền tảng cấp (hssk access add-account)",
                      "the auditor role is granted by the platform operator (hssk access "
                      "add-account), not by an administrator")  # fmt: skip


@dataclass(frozen=True)
class AccountSpec:
    """What an administrator may set on a new account — nothing else (no credentials, no
    counters, no scopes beyond the kind's; system accounts: ``system_scopes``)."""

    username: str
    kind: str
    unit_id: str | None = None
    display_name: str | None = None
    roles: tuple[str, ...] = ()
    phone: str | None = None
    system_scopes: tuple[str, ...] = ()


def create_account(
    conn: psycopg.Connection[Any], actor: Actor, spec: AccountSpec
) -> accounts.Account:
    """A new account (inactive until activated with a code sent to its phone)."""
    mine = managed_units(conn, actor, "account-create")
    _no_auditor_grant(conn, actor, list(spec.roles), "account-create")
    if spec.kind not in ADMIN_ACCOUNT_KINDS:
        raise AdminError(400, "quản trị viên chỉ tạo tài khoản cán bộ, bác sĩ hoặc hệ thống "
                         "(tài khoản người dân có từ lần đăng nhập đầu)",
                         f"an administrator creates staff, clinician or system accounts, not "
                         f"{spec.kind!r}")  # fmt: skip
    if spec.unit_id is not None and spec.unit_id not in mine:
        raise _refuse(conn, actor, "account-create", "không phải đơn vị bạn quản lý",
                      "not a unit you manage", unit=spec.unit_id)  # fmt: skip
    if spec.kind != "system" and spec.system_scopes:
        raise AdminError(400, "chỉ tài khoản hệ thống có phạm vi system/…",
                         "system_scopes are only for system accounts")  # fmt: skip
    if any(not s.startswith("system/") for s in spec.system_scopes):
        raise AdminError(400, "phạm vi hệ thống có dạng system/Loại.read",
                         "system_scopes must look like system/Type.read")  # fmt: skip
    try:
        acc = accounts.create_account(
            conn, spec.username, spec.kind, unit_id=spec.unit_id, roles=spec.roles,
            scopes=spec.system_scopes if spec.kind == "system" else None,
            phone=spec.phone, display_name=spec.display_name, active=False)  # fmt: skip
    except accounts.AccountError as exc:
        raise _invalid(exc) from None
    audit(conn, actor, "account-create", outcome="allow", basis="role",
          detail={"account": acc.id, "username": acc.username, "roles": list(acc.roles)})  # fmt: skip
    return acc


def update_account(
    conn: psycopg.Connection[Any], actor: Actor, account_id: int, changes: dict[str, Any]
) -> accounts.Account:
    """Change a managed account's ``display_name``, ``phone`` or ``roles`` (nothing else)."""
    acc = managed_account(conn, actor, account_id, "account-update")
    _no_auditor_grant(conn, actor, changes.get("roles"), "account-update")
    unknown = set(changes) - {"display_name", "phone", "roles"}
    if unknown:
        raise AdminError(
            400, f"không sửa được {sorted(unknown)}", f"cannot change {sorted(unknown)}"
        )
    if "roles" in changes:
        try:
            changes = {**changes, "roles": accounts.check_roles(changes["roles"] or [])}
        except accounts.AccountError as exc:
            raise _invalid(exc) from None
    if "display_name" in changes:
        accounts.set_display_name(conn, acc, changes["display_name"])
    for column in ("phone", "roles"):  # fixed list: no mass assignment
        if column in changes:
            conn.execute(
                f"UPDATE account SET {column} = %s WHERE id = %s", (changes[column], acc.id)
            )
    audit(conn, actor, "account-update", outcome="allow", basis="role",
          detail={"account": acc.id, "changes": changes})  # fmt: skip
    got = accounts.get_account(conn, acc.id)
    assert got is not None
    return got


def disable_account(
    conn: psycopg.Connection[Any], actor: Actor, account_id: int, reason: str
) -> accounts.Account:
    """Disable a managed account (with its reason, kept); its sessions end at their next request."""
    acc = managed_account(conn, actor, account_id, "account-disable")
    if len(reason.strip()) < 3:
        raise AdminError(400, "hãy ghi lý do khóa (ít nhất 3 ký tự)",
                         "write why the account is disabled (at least 3 characters)")  # fmt: skip
    accounts.set_active(conn, acc.id, False, reason.strip())
    audit(conn, actor, "account-disable", outcome="allow", basis="role",
          detail={"account": acc.id, "reason": reason.strip()})  # fmt: skip
    return _reread(conn, acc.id)


def enable_account(
    conn: psycopg.Connection[Any], actor: Actor, account_id: int
) -> accounts.Account:
    """Enable a disabled account again (as ``hssk access enable``)."""
    acc = managed_account(conn, actor, account_id, "account-enable")
    conn.execute("UPDATE account SET disabled_at = NULL WHERE id = %s", (acc.id,))
    accounts.set_active(conn, acc.id, True)
    audit(conn, actor, "account-enable", outcome="allow", basis="role",
          detail={"account": acc.id})  # fmt: skip
    return _reread(conn, acc.id)


def send_activation(
    conn: psycopg.Connection[Any], settings: Any, actor: Actor, account_id: int
) -> accounts.Account:
    """Send an activation code to the account's phone; for an account with a password this is
    a reset: the old password stops working now."""
    acc = managed_account(conn, actor, account_id, "account-activation")
    if not acc.phone:
        raise AdminError(400, "tài khoản chưa có số điện thoại để nhận mã; hãy thêm số trước",
                         "the account has no phone number to send the code to")  # fmt: skip
    conn.execute(
        "UPDATE account SET disabled_at = NULL, disabled_reason = NULL WHERE id = %s", (acc.id,)
    )
    if acc.has_password:
        conn.execute("UPDATE account SET password_hash = NULL WHERE id = %s", (acc.id,))
        accounts.revoke_refresh_tokens(conn, acc.id)
    sent = auth.send_code(conn, settings, acc, "activate")
    audit(conn, actor, "account-activation", outcome="allow", basis="role",
          detail={"account": acc.id, "sent": sent, "reset": acc.has_password})  # fmt: skip
    if not sent:
        raise AdminError(429, "đã gửi quá nhiều mã gần đây; hãy thử lại sau",
                         "too many codes sent recently; try again later")  # fmt: skip
    return _reread(conn, acc.id)


def _reread(conn: psycopg.Connection[Any], account_id: int) -> accounts.Account:
    got = accounts.get_account(conn, account_id)
    assert got is not None
    return got


def disabled_reasons(conn: psycopg.Connection[Any], account_ids: list[int]) -> dict[int, str]:
    """The disabled accounts among ``account_ids``, with why ('' when no reason was kept)."""
    rows = conn.execute(
        "SELECT id, coalesce(disabled_reason, '') FROM account WHERE id = ANY(%s) "
        "AND NOT active AND disabled_at IS NOT NULL",
        (account_ids,),
    ).fetchall()
    return {r[0]: r[1] for r in rows}
