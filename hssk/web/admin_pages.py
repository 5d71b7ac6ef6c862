"""The admin console (``/admin``): units, accounts, roles, activation, keys and certificates.

Every page and form calls ``hssk.access.admin``, the rules ``/api/v1`` follows too (who
manages what, what may be set, what is audited); these handlers only read forms and show the
answers. Callers come through the one gate (``PageActor``); page forms are checked for
cross-site origin by ``hssk.http.csrf`` (``/admin`` is a page prefix in ``hssk.app``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as UrlPath
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hssk.access import Actor, accounts, admin, signing
from hssk.api.bodies import FormFields
from hssk.api.deps import Conn
from hssk.http.gate import PageActor
from hssk.kernel import clock
from hssk.web import menu, render
from hssk.web.forms import Form
from hssk.web.i18n import t
from hssk.web.pages.guards import login_redirect, relogin_keeping

router = APIRouter(include_in_schema=False)
AccountId = Annotated[int, UrlPath(ge=1, le=2**63 - 1)]
UnitId = Annotated[str, UrlPath(max_length=32)]
PER_PAGE = 50
_UNIT_ID = re.compile(r"^[A-Za-z0-9._-]{2,32}$")
_USERNAME = re.compile(r"^[A-Za-z0-9._@-]{3,64}$")
_PHONE = re.compile(r"^\+?\d{9,12}$")
_FIVE_DIGITS = re.compile(r"^\d{5}$")
ADMIN_UNIT_KINDS = tuple(sorted(accounts.UNIT_KINDS - admin.OPERATOR_UNIT_KINDS))


# --- who may come in -----------------------------------------------------------------------


@router.get("/staff/start")
def staff_start(request: Request, actor: PageActor) -> Response:
    """Where staff land after logging in: the first part of the menu they may use."""
    if not actor.authenticated or actor.kind == "citizen":
        return login_redirect(request, "/staff/login")
    return RedirectResponse(menu.home(actor), 303)


def _gate(
    request: Request,
    conn: psycopg.Connection[Any],
    actor: Actor,
    posted: dict[str, str] | None = None,
) -> Response | None:
    """None when ``actor`` administers units; else the login page (an expired session; a
    form's fields carried through it) or a 403 page (audited)."""
    if not actor.authenticated or actor.kind in ("citizen", "system"):
        if posted is None:
            return login_redirect(request, "/staff/login")
        return relogin_keeping(request, posted)
    try:
        admin.managed_units(conn, actor, "admin-console")
    except admin.AdminError:
        return render.page(request, "admin/error.html", status=403, nav="admin",
                           message=t("admin_forbidden", render.lang_of(request)),
                           reason=t("admin_forbidden_why", render.lang_of(request)))  # fmt: skip
    return None


def _failed(request: Request, exc: admin.AdminError) -> HTMLResponse:
    lang = render.lang_of(request)
    return render.page(request, "admin/error.html", status=exc.status, nav="admin",
                       message=exc.text(lang), reason=None)  # fmt: skip


def _done(url: str, **query: str) -> RedirectResponse:
    return RedirectResponse(f"{url}?{urlencode(query)}", 303)


# --- overview ------------------------------------------------------------------------------


@router.get("/admin", response_class=HTMLResponse)
def home(request: Request, conn: Conn, actor: PageActor) -> Response:
    if (stop := _gate(request, conn, actor)) is not None:
        return stop
    units = admin.list_units(conn, actor)
    counts = conn.execute(
        """SELECT count(*), count(*) FILTER (WHERE NOT active AND disabled_at IS NOT NULL),
                  count(*) FILTER (WHERE NOT active AND disabled_at IS NULL)
           FROM account WHERE unit_id = ANY(%s)""",
        ([u.id for u in units],),
    ).fetchone()
    total, disabled, pending = counts if counts else (0, 0, 0)
    keys = sum(1 for u in units for k in u.keys if _key_status(k) == "active")
    return render.page(request, "admin/home.html", nav="admin", units=len(units),
                       accounts=total, disabled=disabled, pending=pending, keys=keys,
                       unit=_unit_label(conn, actor.unit_id))  # fmt: skip


def _unit_label(conn: psycopg.Connection[Any], unit_id: str | None) -> str:
    row = conn.execute("SELECT name FROM unit WHERE id = %s", (unit_id,)).fetchone()
    return f"{row[0]} ({unit_id})" if row else str(unit_id)


# --- units ---------------------------------------------------------------------------------


@router.get("/admin/units", response_class=HTMLResponse)
def units_page(request: Request, conn: Conn, actor: PageActor) -> Response:
    if (stop := _gate(request, conn, actor)) is not None:
        return stop
    units = admin.list_units(conn, actor)
    names = {u.id: u.name for u in units}
    return render.page(request, "admin/units.html", nav="admin", units=units, names=names,
                       done=request.query_params.get("done"),
                       done_unit=request.query_params.get("unit", ""))  # fmt: skip


def _unit_form(
    request: Request,
    conn: psycopg.Connection[Any],
    actor: Actor,
    *,
    unit: admin.Unit | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
    **ctx: Any,
) -> HTMLResponse:
    units = admin.list_units(conn, actor)
    below = set(accounts.unit_subtree(conn, unit.id)) if unit else set()
    parents = [(u.id, f"{u.name} ({u.id})") for u in units if u.id not in below]
    lang = render.lang_of(request)
    kinds = [(k, t(f"kind_{k}", lang)) for k in ADMIN_UNIT_KINDS]
    members = admin.list_accounts(conn, actor, unit_id=unit.id, limit=PER_PAGE) if unit else []
    return render.page(request, "admin/unit.html", nav="admin", unit=unit, values=values,
                       errors=errors or {}, parents=parents, kinds=kinds, status=status,
                       members=members, key_status=_key_status, at=_at,
                       own=unit is not None and unit.id == actor.unit_id, **ctx)  # fmt: skip


@router.get("/admin/units/new", response_class=HTMLResponse)
def unit_new(request: Request, conn: Conn, actor: PageActor) -> Response:
    if (stop := _gate(request, conn, actor)) is not None:
        return stop
    return _unit_form(request, conn, actor, unit=None, values={"parent_id": actor.unit_id or ""})


def _read_unit(raw: dict[str, str], unit_id: str | None) -> tuple[Form, admin.UnitSpec | None]:
    """The unit form's fields, checked (each error next to its field)."""
    form = Form(raw)
    uid = unit_id or form.text("id", required=True, max_len=32)
    if uid and not _UNIT_ID.match(uid):
        form.error("id", "Mã đơn vị gồm 2–32 chữ cái, chữ số hoặc . _ - (không dấu cách).",
                   "A unit id has 2–32 letters, digits or . _ - (no spaces).")  # fmt: skip
    name = form.text("name", required=True, max_len=200)
    if name and len(name) < 2:
        form.error("name", "Tên đơn vị quá ngắn.", "The name is too short.")
    kind = form.choice("kind", {k: t(f"kind_{k}", "vi") for k in ADMIN_UNIT_KINDS})
    parent = form.text("parent_id", max_len=32)
    codes: dict[str, str | None] = {}
    for key in ("facility_code", "province_code", "commune_code", "commune_code_old"):
        codes[key] = form.text(key, max_len=8)
    if codes["facility_code"] and not _FIVE_DIGITS.match(codes["facility_code"]):
        form.error("facility_code", "Mã cơ sở KCB gồm đúng 5 chữ số, ví dụ 01296.",
                   "A facility code has exactly 5 digits, e.g. 01296.")  # fmt: skip
    if not form.ok or not uid or not name or not kind:
        return form, None
    return form, admin.UnitSpec(uid, kind, name, parent, **codes)


@router.post("/admin/units", response_class=HTMLResponse)
def unit_create(request: Request, conn: Conn, actor: PageActor, raw: FormFields) -> Response:
    if (stop := _gate(request, conn, actor, raw)) is not None:
        return stop
    form, spec = _read_unit(raw, None)
    lang = render.lang_of(request)
    if spec is not None:
        try:
            admin.create_unit(conn, actor, spec)
        except admin.AdminError as exc:
            field = "id" if exc.status == 409 and "facility" not in exc.en else "parent_id"
            field = "facility_code" if "facility" in exc.en else field
            field = "kind" if "kind" in exc.en else field
            form.error(field, exc.vi, exc.en)
        else:
            return _done(f"/admin/units/{spec.id}", done="created")
    return _unit_form(request, conn, actor, unit=None, values=raw, errors=form.by_field(lang),
                      status=422)  # fmt: skip


@router.get("/admin/units/{unit_id}", response_class=HTMLResponse)
def unit_page(unit_id: UnitId, request: Request, conn: Conn, actor: PageActor) -> Response:
    if (stop := _gate(request, conn, actor)) is not None:
        return stop
    try:
        unit = admin.get_unit(conn, actor, unit_id)
    except admin.AdminError as exc:
        return _failed(request, exc)
    values = {k: getattr(unit, k) or "" for k in admin.UnitSpec.__dataclass_fields__}
    return _unit_form(request, conn, actor, unit=unit, values=values,
                      done=request.query_params.get("done"),
                      kid=request.query_params.get("kid", ""))  # fmt: skip


@router.post("/admin/units/{unit_id}", response_class=HTMLResponse)
def unit_update(
    unit_id: UnitId, request: Request, conn: Conn, actor: PageActor, raw: FormFields
) -> Response:
    if (stop := _gate(request, conn, actor, raw)) is not None:
        return stop
    try:
        unit = admin.get_unit(conn, actor, unit_id)
    except admin.AdminError as exc:
        return _failed(request, exc)
    form, spec = _read_unit(raw, unit_id)
    if spec is not None:
        try:
            admin.update_unit(conn, actor, spec)
        except admin.AdminError as exc:
            form.error("facility_code" if "facility" in exc.en else "parent_id", exc.vi, exc.en)
        else:
            return _done(f"/admin/units/{unit_id}", done="saved")
    errors = form.by_field(render.lang_of(request))
    return _unit_form(request, conn, actor, unit=unit, values=raw, errors=errors, status=422)


@router.post("/admin/units/{unit_id}/keys", response_class=HTMLResponse)
def key_add(
    unit_id: UnitId, request: Request, conn: Conn, actor: PageActor, raw: FormFields
) -> Response:
    if (stop := _gate(request, conn, actor, raw)) is not None:
        return stop
    try:
        unit = admin.get_unit(conn, actor, unit_id)
        pem = raw.get("pem", "").strip()
        if len(pem) < 40:
            raise admin.AdminError(400, "Hãy dán khóa công khai hoặc chứng thư dạng PEM "
                                   "(bắt đầu bằng -----BEGIN).", "Paste a PEM public key or "
                                   "certificate (starting with -----BEGIN).")  # fmt: skip
        entry = admin.add_key(conn, actor, unit_id, pem.encode())
    except admin.AdminError as exc:
        if exc.status == 404:
            return _failed(request, exc)
        values = {k: getattr(unit, k) or "" for k in admin.UnitSpec.__dataclass_fields__}
        return _unit_form(request, conn, actor, unit=unit, values={**values, "pem": raw.get("pem", "")},
                          errors={"pem": exc.text(render.lang_of(request))}, status=422)  # fmt: skip
    return _done(f"/admin/units/{unit_id}", done="key-added", kid=entry["kid"])


@router.post("/admin/units/{unit_id}/keys/{kid}/revoke", response_class=HTMLResponse)
def key_revoke(
    unit_id: UnitId, kid: Annotated[str, UrlPath(max_length=100)], request: Request,
    conn: Conn, actor: PageActor, raw: FormFields,
) -> Response:  # fmt: skip
    if (stop := _gate(request, conn, actor, raw)) is not None:
        return stop
    try:
        admin.revoke_key(conn, actor, unit_id, kid)
    except admin.AdminError as exc:
        return _failed(request, exc)
    return _done(f"/admin/units/{unit_id}", done="key-revoked", kid=kid)


def _at(text: str | None) -> str:
    """A stored instant (ISO text, UTC) as a Vietnam date and time."""
    return render.fmt_date(clock.parse_instant(text), True) if text else ""


def _key_status(entry: dict[str, Any]) -> str:
    if entry.get("revoked_at"):
        return "revoked"
    not_after = entry.get("not_after")
    if not_after and clock.parse_instant(not_after) <= clock.now():
        return "expired"
    return "active"


@router.get("/admin/keys", response_class=HTMLResponse)
def keys_page(request: Request, conn: Conn, actor: PageActor) -> Response:
    if (stop := _gate(request, conn, actor)) is not None:
        return stop
    units = admin.list_units(conn, actor)
    platform = signing.platform_public_jwk(request.app.state.settings)
    return render.page(request, "admin/keys.html", nav="admin", units=units,
                       key_status=_key_status, platform=platform, at=_at)  # fmt: skip


# --- accounts ------------------------------------------------------------------------------


@router.get("/admin/accounts", response_class=HTMLResponse)
def accounts_page(
    request: Request,
    conn: Conn,
    actor: PageActor,
    q: Annotated[str, Query(max_length=100)] = "",
    unit: Annotated[str, Query(max_length=32)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    if (stop := _gate(request, conn, actor)) is not None:
        return stop
    found = admin.list_accounts(conn, actor, unit_id=unit or None, search=q or None,
                                limit=PER_PAGE + 1, offset=(page - 1) * PER_PAGE)  # fmt: skip
    more = len(found) > PER_PAGE
    found = found[:PER_PAGE]
    units = admin.list_units(conn, actor)

    def link(**change: Any) -> str:
        query = {"q": q, "unit": unit, "page": page, **change}
        return "/admin/accounts?" + urlencode({k: v for k, v in query.items() if v})

    return render.page(request, "admin/accounts.html", nav="admin", accounts=found, more=more,
                       page=page, link=link, units=[(u.id, f"{u.name} ({u.id})") for u in units],
                       names={u.id: u.name for u in units}, values={"q": q, "unit": unit},
                       status_of=_status_of(conn, found), searched=bool(q or unit))  # fmt: skip


def _status_of(conn: psycopg.Connection[Any], found: list[accounts.Account]) -> dict[int, str]:
    """active, pending (no password set yet) or disabled, per account."""
    disabled = admin.disabled_reasons(conn, [a.id for a in found])
    return {a.id: "disabled" if a.id in disabled else _state(a) for a in found}


def _state(acc: accounts.Account) -> str:
    """active once it can be used: a person's account needs its password (set with the
    activation code), a system's signs in with its key."""
    return "active" if acc.active and (acc.has_password or acc.kind == "system") else "pending"


def _account_form(
    request: Request,
    conn: psycopg.Connection[Any],
    actor: Actor,
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    lang = render.lang_of(request)
    units = admin.list_units(conn, actor)
    return render.page(request, "admin/account_new.html", nav="admin", values=values,
                       errors=errors or {}, status=status,
                       units=[(u.id, f"{u.name} ({u.id})") for u in units],
                       kinds=[(k, t(f"acc_kind_{k}", lang)) for k in admin.ADMIN_ACCOUNT_KINDS],
                       roles=admin.GRANTABLE_ROLES, chosen=set(values.get("roles") or ()))  # fmt: skip


@router.get("/admin/accounts/new", response_class=HTMLResponse)
def account_new(request: Request, conn: Conn, actor: PageActor) -> Response:
    if (stop := _gate(request, conn, actor)) is not None:
        return stop
    unit = request.query_params.get("unit") or actor.unit_id or ""
    return _account_form(request, conn, actor, values={"unit_id": unit, "kind": "clinician"})


async def _form_roles(request: Request) -> list[str]:
    """The ticked role boxes (one ``role`` field per box; ``FormFields`` keeps one value per
    name). Starlette keeps the parsed form, so reading it twice costs nothing."""
    form = await request.form()
    return [str(v) for v in form.getlist("role") if str(v) in accounts.ROLES]


Roles = Annotated[list[str], Depends(_form_roles)]


def _read_account(raw: dict[str, str], roles: list[str]) -> tuple[Form, admin.AccountSpec | None]:
    form = Form(raw)
    username = form.text("username", required=True, max_len=64)
    if username and not _USERNAME.match(username):
        form.error("username", f"“{username}” không dùng được: tên đăng nhập gồm 3–64 chữ cái "
                   "không dấu, chữ số hoặc . _ @ - (không có dấu cách).",
                   f"“{username}” cannot be used: a username has 3–64 letters without "
                   "diacritics, digits or . _ @ - (no spaces).")  # fmt: skip
    kind = form.choice("kind", {k: t(f"acc_kind_{k}", "vi") for k in admin.ADMIN_ACCOUNT_KINDS})
    unit = form.text("unit_id", required=True, max_len=32)
    name = form.text("display_name", max_len=200)
    phone = _phone(form)
    if not form.ok or not username or not kind:
        return form, None
    return form, admin.AccountSpec(username, kind, unit, name, tuple(roles), phone)


def _phone(form: Form) -> str | None:
    phone = form.text("phone", max_len=20)
    if phone:
        phone = re.sub(r"[\s.\-]", "", phone)
        if not _PHONE.match(phone):
            form.error("phone", f"“{phone}” không phải số điện thoại: số điện thoại gồm 10 chữ "
                       "số, ví dụ 0912345678.", f"“{phone}” is not a phone number: it has 10 "
                       "digits, e.g. 0912345678.")  # fmt: skip
            return None
    return phone


def _role_field(exc: admin.AdminError) -> str:
    text = exc.en.lower()
    if "role" in text:
        return "roles"
    if "username" in text:
        return "username"
    return "unit_id"


@router.post("/admin/accounts", response_class=HTMLResponse)
def account_create(
    request: Request, conn: Conn, actor: PageActor, raw: FormFields, roles: Roles
) -> Response:
    if (stop := _gate(request, conn, actor, raw)) is not None:
        return stop
    form, spec = _read_account(raw, roles)
    if spec is not None:
        try:
            acc = admin.create_account(conn, actor, spec)
        except admin.AdminError as exc:
            form.error(_field_of(exc), exc.vi, exc.en)
        else:
            return _done(f"/admin/accounts/{acc.id}", done="created")
    values: dict[str, Any] = {**raw, "roles": roles}
    return _account_form(request, conn, actor, values=values,
                         errors=form.by_field(render.lang_of(request)), status=422)  # fmt: skip


def _account_page(
    request: Request,
    conn: psycopg.Connection[Any],
    actor: Actor,
    acc: accounts.Account,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    reasons = admin.disabled_reasons(conn, [acc.id])
    state = "disabled" if acc.id in reasons else _state(acc)
    shown = values if values is not None else {
        "display_name": acc.display_name or "", "phone": acc.phone or "", "roles": acc.roles,
    }  # fmt: skip
    return render.page(request, "admin/account.html", nav="admin", acc=acc, state=state,
                       reason=reasons.get(acc.id), values=shown, errors=errors or {},
                       roles=admin.GRANTABLE_ROLES, chosen=set(shown.get("roles") or ()),
                       own=str(acc.id) == actor.account_id, status=status,
                       unit_name=_unit_label(conn, acc.unit_id),
                       done=request.query_params.get("done"),
                       phone_masked=_masked(acc.phone))  # fmt: skip


def _masked(phone: str | None) -> str:
    return f"{phone[:3]}••••{phone[-3:]}" if phone and len(phone) > 6 else ""


def _open_account(
    request: Request, conn: psycopg.Connection[Any], actor: Actor, account_id: int, action: str
) -> accounts.Account | Response:
    try:
        return admin.managed_account(conn, actor, account_id, action)
    except admin.AdminError as exc:
        return _failed(request, exc)


@router.get("/admin/accounts/{account_id}", response_class=HTMLResponse)
def account_page(account_id: AccountId, request: Request, conn: Conn, actor: PageActor) -> Response:
    if (stop := _gate(request, conn, actor)) is not None:
        return stop
    acc = _open_account(request, conn, actor, account_id, "account-read")
    return acc if isinstance(acc, Response) else _account_page(request, conn, actor, acc)


@router.post("/admin/accounts/{account_id}", response_class=HTMLResponse)
def account_update(
    account_id: AccountId, request: Request, conn: Conn, actor: PageActor, raw: FormFields,
    roles: Roles,
) -> Response:  # fmt: skip
    if (stop := _gate(request, conn, actor, raw)) is not None:
        return stop
    acc = _open_account(request, conn, actor, account_id, "account-read")
    if isinstance(acc, Response):
        return acc
    form = Form(raw)
    name = form.text("display_name", max_len=200)
    phone = _phone(form)
    if form.ok:
        try:
            admin.update_account(conn, actor, acc.id,
                                 {"display_name": name, "phone": phone, "roles": roles})  # fmt: skip
        except admin.AdminError as exc:
            form.error(_field_of(exc), exc.vi, exc.en)
        else:
            return _done(f"/admin/accounts/{acc.id}", done="saved")
    values = {**raw, "roles": roles}
    return _account_page(request, conn, actor, acc, errors=form.by_field(render.lang_of(request)),
                         values=values, status=422)  # fmt: skip


@router.post("/admin/accounts/{account_id}/{change}", response_class=HTMLResponse)
def account_change(
    account_id: AccountId,
    change: Annotated[str, UrlPath(pattern="^(disable|enable|activation)$")],
    request: Request,
    conn: Conn,
    actor: PageActor,
    raw: FormFields,
) -> Response:
    if (stop := _gate(request, conn, actor, raw)) is not None:
        return stop
    try:
        if change == "disable":
            admin.disable_account(conn, actor, account_id, raw.get("reason", ""))
        elif change == "enable":
            admin.enable_account(conn, actor, account_id)
        else:
            admin.send_activation(conn, request.app.state.settings, actor, account_id)
    except admin.AdminError as exc:
        if exc.status in (403, 404):
            return _failed(request, exc)
        acc = _open_account(request, conn, actor, account_id, "account-read")
        if isinstance(acc, Response):
            return acc
        field = "reason" if change == "disable" else "phone"
        return _account_page(request, conn, actor, acc, status=422,
                             errors={field: exc.text(render.lang_of(request))})  # fmt: skip
    return _done(f"/admin/accounts/{account_id}", done=change)


def _field_of(exc: admin.AdminError) -> str:
    """The form field an administration refusal is about (shown next to it)."""
    text = exc.en.lower()
    for word, field in (("role", "roles"), ("auditor", "roles"), ("username", "username"),
                        ("phone", "phone"), ("kind", "kind"), ("scope", "kind")):  # fmt: skip
        if word in text:
            return field
    return "unit_id"
