"""HTTP endpoints of access control: OAuth token endpoint, accounts and units (admins),
consents, guardianship, break-glass, the citizen's access log and the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hssk.access import accounts, admin, auth, consent, relations, signing
from hssk.access.actor import Actor
from hssk.access.audit import record as audit
from hssk.access.audit import search as audit_search
from hssk.access.audit import to_fhir
from hssk.access.policy import (
    ROLE_AUDITOR,
    ROLE_STATION,
    authorize,
)
from hssk.api.deps import Conn, CurrentActor, get_settings

router = APIRouter()
# Database ids are bigint: bound them at the boundary (a larger number is a 400, not a 500).
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
PathId = Annotated[int, Path(ge=1, le=2**63 - 1)]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _address(request: Request) -> str | None:
    # the client's address, after hssk.app applied the trusted proxies (hssk.http.client)
    return request.client.host if request.client else None


def _refuse(
    conn: psycopg.Connection[Any], actor: Actor, action: str, reason: str, **what: Any
) -> HTTPException:
    """Audit a refusal; the 403 to raise."""
    audit(conn, actor, action, outcome="deny", basis="deny", detail={"reason": reason, **what})
    return HTTPException(403, f"không được phép / forbidden: {reason}")


# --- OAuth 2 ----------------------------------------------------------------------------


def _oauth_error(exc: auth.AuthError) -> JSONResponse:
    headers = dict(NO_STORE)
    if exc.retry_after:
        headers["Retry-After"] = str(exc.retry_after)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_client"'
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status,
        headers=headers,
    )


@router.post("/auth/token", tags=["auth"], summary="OAuth 2 token endpoint")
def token(
    request: Request,
    conn: Conn,
    grant_type: Annotated[str, Form()],
    scope: Annotated[str | None, Form()] = None,
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    totp: Annotated[str | None, Form()] = None,
    identifier: Annotated[str | None, Form()] = None,
    code: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
    client_assertion_type: Annotated[str | None, Form()] = None,
    client_assertion: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form(max_length=64)] = None,
) -> JSONResponse:
    """Grants: ``password`` (+ ``totp``), ``urn:hssk:params:oauth:grant-type:otp``
    (``identifier`` = CCCD or phone, ``code``), ``client_credentials`` (JWT assertion),
    ``refresh_token``. Failures are counted (lockout, throttling) and audited."""
    settings = get_settings(request)
    addr = _address(request)
    try:
        if grant_type == auth.GRANT_PASSWORD and username and password is not None:
            body = auth.password_grant(conn, settings, username=username, password=password,
                                       totp=totp, scope=scope, address=addr,
                                       client=client_id)  # fmt: skip
        elif grant_type == auth.GRANT_OTP and identifier and code:
            body = auth.otp_grant(conn, settings, identifier=identifier, code=code, scope=scope,
                                  address=addr, client=client_id)  # fmt: skip
        elif grant_type == auth.GRANT_CLIENT:
            token_url = str(request.url_for("token"))
            audiences = sorted({token_url, f"{settings.base_url}/auth/token"})
            body = auth.client_credentials_grant(
                conn, settings, assertion_type=client_assertion_type, assertion=client_assertion,
                scope=scope, audiences=audiences, address=addr)  # fmt: skip
        elif grant_type == auth.GRANT_REFRESH and refresh_token:
            body = auth.refresh_grant(conn, settings, refresh_token=refresh_token, scope=scope,
                                      address=addr)  # fmt: skip
        else:
            raise auth.AuthError(
                "unsupported_grant_type" if grant_type not in _GRANTS else "invalid_request",
                f"grant_type {grant_type!r} with these parameters is not supported; see "
                "/.well-known/smart-configuration",
            )
    except auth.AuthError as exc:
        return _oauth_error(exc)  # returned, not raised: failure counters are committed
    return JSONResponse(body, headers=NO_STORE)


_GRANTS = (auth.GRANT_PASSWORD, auth.GRANT_OTP, auth.GRANT_CLIENT, auth.GRANT_REFRESH)


class OtpRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identifier: str = Field(min_length=3, max_length=64, description="CCCD or phone number")


@router.post("/auth/otp", tags=["auth"], status_code=202, summary="Send a citizen a login code")
def send_otp(request: Request, conn: Conn, req: OtpRequest) -> JSONResponse:
    """Always answers the same way, whether or not the identifier is known."""
    try:
        auth.request_login_code(conn, get_settings(request), req.identifier, _address(request))
    except auth.AuthError as exc:
        return _oauth_error(exc)
    return JSONResponse(
        {"sent": True, "message": "Nếu thông tin đúng, mã xác thực đã được gửi qua SMS."},
        status_code=202,
    )


class Activation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=64)
    code: str = Field(max_length=12)
    new_password: str | None = Field(default=None, max_length=256)


@router.post("/auth/activate", tags=["auth"], summary="Activate an account / reset a password")
def activate(request: Request, conn: Conn, req: Activation) -> JSONResponse:
    try:
        account = auth.activate(conn, get_settings(request), username=req.username,
                                code=req.code, new_password=req.new_password,
                                address=_address(request))  # fmt: skip
    except auth.AuthError as exc:
        return _oauth_error(exc)
    except accounts.AccountError as exc:
        return JSONResponse({"error": "invalid_request", "error_description": str(exc)}, 400)
    return JSONResponse({"activated": True, "username": account.username})


@router.post("/auth/revoke", tags=["auth"], summary="Revoke a refresh token (RFC 7009)")
def revoke(conn: Conn, token: Annotated[str, Form()]) -> JSONResponse:
    auth.revoke(conn, token)
    return JSONResponse({}, headers=NO_STORE)


@router.get("/.well-known/smart-configuration", tags=["auth"], summary="SMART configuration")
def smart_configuration(request: Request) -> dict[str, Any]:
    base = get_settings(request).base_url
    return {
        "issuer": base,
        "token_endpoint": f"{base}/auth/token",
        "revocation_endpoint": f"{base}/auth/revoke",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": list(_GRANTS),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(signing.ALGORITHMS),
        "scopes_supported": ["patient/*.read", "user/*.read", "user/*.write", "system/*.read"],
        "capabilities": ["client-confidential-asymmetric", "permission-patient", "permission-user"],
    }


@router.get("/.well-known/jwks.json", tags=["auth"], summary="The platform's signing key")
def jwks(request: Request) -> dict[str, Any]:
    return {"keys": signing.platform_public_jwks(get_settings(request))}


# --- me (the caller) ----------------------------------------------------------------------


@router.get("/api/v1/me", tags=["me"], summary="The caller's account")
def me(conn: Conn, actor: CurrentActor) -> dict[str, Any]:
    acc = accounts.get_account(conn, actor.account_id)
    out: dict[str, Any] = acc.public() if acc else {"id": actor.account_id, "kind": actor.kind}
    out["token_scopes"] = sorted(actor.scopes)
    return out


@router.post("/api/v1/me/totp", tags=["me"], status_code=201,
             summary="Enrol in TOTP (staff): returns the otpauth:// URI for the app")  # fmt: skip
def enrol_totp(conn: Conn, actor: CurrentActor) -> dict[str, Any]:
    acc = accounts.get_account(conn, actor.account_id)
    if acc is None or acc.kind == "citizen" or acc.kind == "system":
        raise _refuse(conn, actor, "totp-enrol", "only staff and clinician accounts use TOTP")
    if acc.has_totp:  # replacing a second factor is an administrator's job
        raise HTTPException(409, "đã đăng ký TOTP / already enrolled; ask an administrator")
    uri = accounts.enroll_totp(conn, acc.id)
    audit(conn, actor, "totp-enrol", outcome="allow", basis="own-account")
    return {"otpauth_uri": uri}


def _person_for(conn: psycopg.Connection[Any], actor: Actor, person_id: int | None) -> int:
    with _refusals():
        return consent.person_for(conn, actor, person_id)


@contextmanager
def _refusals() -> Iterator[None]:
    """The access component's refusals as HTTP answers."""
    try:
        yield
    except consent.Refused as exc:
        raise HTTPException(exc.status, exc.reason) from None


@router.get("/api/v1/me/children", tags=["me"], summary="Children whose book the caller holds")
def my_children(conn: Conn, actor: CurrentActor) -> list[dict[str, Any]]:
    return [{"person_id": c.person_id, "name": c.name, "birth_date": c.birth_date}
            for c in consent.children(conn, actor)]  # fmt: skip


@router.get("/api/v1/me/access-log", tags=["me"], summary="Who read my record, when, why")
def access_log(
    conn: Conn,
    actor: CurrentActor,
    person_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    target = _person_for(conn, actor, person_id)
    rows = audit_search(conn, person_ids=[target], limit=limit, offset=offset)
    return [
        {
            "at": r.at.isoformat(),
            "who": r.actor_name or ("bạn / you" if r.actor == actor.account_id else r.actor),
            "unit": r.unit_name or r.unit_id,
            "role": r.role,
            "action": r.action,
            "resource": r.resource_type,
            "basis": r.basis,
            "purpose": r.purpose,
            "outcome": r.outcome,
        }
        for r in rows
    ]


# --- consent ------------------------------------------------------------------------------


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: Id | None = Field(default=None, description="your child's; default: yourself")
    grantee_account: Id | None = None
    grantee_unit: str | None = Field(default=None, max_length=64)
    categories: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=40)
    purpose: str | None = Field(default="treatment", max_length=40)
    until: date | None = Field(
        default=None, description="last day the consent holds (Vietnam date, inclusive)"
    )
    days: int | None = Field(default=365, ge=1, le=consent.MAX_DAYS)


@router.get("/api/v1/me/consents", tags=["consent"], summary="Consents I (or my children) gave")
def list_consents(conn: Conn, actor: CurrentActor) -> list[dict[str, Any]]:
    return [c.as_json() for c in consent.consents(conn, actor)]


@router.post("/api/v1/me/consents", tags=["consent"], status_code=201, summary="Grant a consent")
def grant_consent(conn: Conn, actor: CurrentActor, req: ConsentIn) -> dict[str, Any]:
    with _refusals():
        return consent.grant(conn, actor, **req.model_dump()).as_json()


@router.delete("/api/v1/me/consents/{consent_id}", tags=["consent"], summary="Revoke a consent")
def revoke_consent(conn: Conn, actor: CurrentActor, consent_id: PathId) -> dict[str, Any]:
    with _refusals():
        return consent.revoke(conn, actor, consent_id).as_json()


# --- break-glass --------------------------------------------------------------------------


class BreakGlassIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: Id
    reason: str = Field(
        min_length=consent.MIN_REASON, max_length=2000, description="lý do cấp cứu, viết rõ"
    )


@router.post("/api/v1/break-glass", tags=["break-glass"], status_code=201,
             summary="Declare an emergency to read a record (flagged for review)")  # fmt: skip
def break_glass(conn: Conn, actor: CurrentActor, req: BreakGlassIn) -> dict[str, Any]:
    with _refusals():
        e = consent.declare_emergency(conn, actor, req.person_id, req.reason)
    return {"id": e.id, "person_id": e.person_id, "expires_at": e.expires_at.isoformat(),
            "review": "pending"}  # fmt: skip


@router.get("/api/v1/break-glass", tags=["break-glass"], summary="Emergency accesses (auditors)")
def list_break_glass(
    conn: Conn,
    actor: CurrentActor,
    pending: bool = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    if ROLE_AUDITOR not in actor.roles:
        raise _refuse(conn, actor, "break-glass-list", "auditors only")
    rows = conn.execute(
        """SELECT b.id, b.account_id, a.display_name, b.unit_id, b.person_id, b.reason,
                  b.opened_at, b.expires_at, b.reviewed_at, b.review_outcome, b.review_note
           FROM break_glass b LEFT JOIN account a ON a.id::text = b.account_id
           WHERE NOT %s OR b.reviewed_at IS NULL ORDER BY b.id DESC LIMIT %s""",
        (pending, limit),
    ).fetchall()
    keys = ("id", "account_id", "clinician", "unit_id", "person_id", "reason", "opened_at",
            "expires_at", "reviewed_at", "review_outcome", "review_note")  # fmt: skip
    return [dict(zip(keys, r, strict=True)) for r in rows]


class Review(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["justified", "unjustified"]
    note: str | None = Field(default=None, max_length=2000)


@router.post("/api/v1/break-glass/{bg_id}/review", tags=["break-glass"], summary="Review one")
def review_break_glass(
    conn: Conn, actor: CurrentActor, bg_id: PathId, req: Review
) -> dict[str, Any]:
    if ROLE_AUDITOR not in actor.roles:
        raise _refuse(conn, actor, "break-glass-review", "auditors only")
    row = conn.execute(
        """UPDATE break_glass SET reviewed_at = now(), reviewed_by = %s, review_outcome = %s,
             review_note = %s WHERE id = %s RETURNING id, person_id""",
        (actor.account_id, req.outcome, req.note, bg_id),
    ).fetchone()
    if row is None:
        raise HTTPException(404, f"no break-glass access {bg_id}")
    audit(conn, actor, "break-glass-review", outcome="allow", basis="role", person_id=row[1],
          detail={"id": bg_id, "outcome": req.outcome})  # fmt: skip
    return {"id": bg_id, "review_outcome": req.outcome}


# --- guardianship -------------------------------------------------------------------------


class GuardianshipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    guardian_person: Id
    child_person: Id
    relation: Literal["parent", "legal-guardian"] = "parent"
    valid_until: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    reason: str | None = Field(default=None, max_length=1000,
                               description="the papers seen, when the registry does not link them")  # fmt: skip


@router.post("/api/v1/guardianships", tags=["guardianship"], status_code=201,
             summary="Link a child's book to a guardian (station staff of the child's commune)")  # fmt: skip
def add_guardianship(conn: Conn, actor: CurrentActor, req: GuardianshipIn) -> dict[str, Any]:
    decision = authorize(conn, actor, "write", "RelatedPerson", req.child_person)
    if not (decision.allowed and (ROLE_STATION in actor.roles or actor.kind == "system")):
        raise _refuse(conn, actor, "guardianship", decision.reason or "station staff only",
                      person_id=req.child_person)  # fmt: skip
    found = conn.execute(
        "SELECT count(*) FROM person WHERE id = ANY(%s)", ([req.guardian_person, req.child_person],)
    ).fetchone()
    if not found or found[0] != 2:
        raise HTTPException(404, "guardian or child person does not exist")
    try:
        link = relations.link_guardian(conn, req.guardian_person, req.child_person,
                                       relation=req.relation, valid_until=req.valid_until,
                                       created_by=actor.account_id, reason=req.reason)  # fmt: skip
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    audit(conn, actor, "guardianship", outcome="allow", basis=decision.basis,
          person_id=req.child_person, detail=req.model_dump())  # fmt: skip
    return {"id": link, **req.model_dump()}


# --- units and accounts (administrators): the rules are hssk.access.admin's ----------------


@contextmanager
def _admin() -> Iterator[None]:
    """An administration refusal as its HTTP answer."""
    try:
        yield
    except admin.AdminError as exc:
        raise HTTPException(exc.status, str(exc)) from None


class UnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9._-]{2,32}$")
    kind: str
    name: str = Field(min_length=2, max_length=200)
    parent_id: str | None = None
    facility_code: str | None = Field(default=None, pattern=r"^\d{5}$")
    province_code: str | None = Field(default=None, max_length=8)
    commune_code: str | None = Field(default=None, max_length=8)
    commune_code_old: str | None = Field(default=None, max_length=8)


@router.get("/api/v1/units", tags=["admin"], summary="Units I manage")
def list_units(conn: Conn, actor: CurrentActor) -> list[dict[str, Any]]:
    with _admin():
        return [u.public() for u in admin.list_units(conn, actor)]


@router.post("/api/v1/units", tags=["admin"], status_code=201, summary="Create a unit")
def create_unit(conn: Conn, actor: CurrentActor, req: UnitIn) -> dict[str, Any]:
    with _admin():
        admin.create_unit(conn, actor, admin.UnitSpec(**req.model_dump()))
    return req.model_dump()


class UnitPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str | None = None
    name: str | None = Field(default=None, min_length=2, max_length=200)
    parent_id: str | None = None
    facility_code: str | None = Field(default=None, pattern=r"^\d{5}$")
    province_code: str | None = Field(default=None, max_length=8)
    commune_code: str | None = Field(default=None, max_length=8)
    commune_code_old: str | None = Field(default=None, max_length=8)


@router.patch("/api/v1/units/{unit_id}", tags=["admin"], summary="Change a unit")
def patch_unit(conn: Conn, actor: CurrentActor, unit_id: str, req: UnitPatch) -> dict[str, Any]:
    with _admin():
        unit = admin.get_unit(conn, actor, unit_id)
        now = {k: v for k, v in unit.public().items() if k in admin.UnitSpec.__dataclass_fields__}
        spec = admin.UnitSpec(**{**now, **req.model_dump(exclude_unset=True)})
        return admin.update_unit(conn, actor, spec).public()


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pem: str = Field(min_length=40, max_length=20000, description="public key or certificate")


@router.post("/api/v1/units/{unit_id}/keys", tags=["admin"], status_code=201,
             summary="Register a unit's public key or X.509 certificate")  # fmt: skip
def add_key(conn: Conn, actor: CurrentActor, unit_id: str, req: KeyIn) -> dict[str, Any]:
    with _admin():
        return admin.add_key(conn, actor, unit_id, req.pem.encode())


@router.post("/api/v1/units/{unit_id}/keys/{kid}/revoke", tags=["admin"],
             summary="Revoke a unit's key (after registering its successor)")  # fmt: skip
def revoke_key(conn: Conn, actor: CurrentActor, unit_id: str, kid: str) -> dict[str, Any]:
    with _admin():
        admin.revoke_key(conn, actor, unit_id, kid)
    return {"unit": unit_id, "kid": kid, "revoked": True}


class AccountIn(BaseModel):
    """What an administrator may set on a new account — nothing else (no credentials, no
    counters, no scopes beyond the kind's)."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=r"^[A-Za-z0-9._@-]{3,64}$")
    # no citizens here: their account comes with their first login, by the phone the
    # population register holds (an administrator must not be able to tie a login to a person)
    kind: Literal["staff", "clinician", "system"]
    unit_id: str | None = None
    display_name: str | None = Field(default=None, max_length=200)
    roles: list[str] = Field(default_factory=list, max_length=5)
    phone: str | None = Field(default=None, pattern=r"^\+?\d{9,12}$")
    system_scopes: list[str] = Field(default_factory=list, max_length=40)


class AccountPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, pattern=r"^\+?\d{9,12}$")
    roles: list[str] | None = Field(default=None, max_length=5)


@router.get("/api/v1/accounts", tags=["admin"], summary="Accounts of the units I manage")
def list_accounts(
    conn: Conn,
    actor: CurrentActor,
    unit_id: str | None = None,
    q: Annotated[
        str | None, Query(max_length=100, description="part of a username, name or phone")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    with _admin():
        found = admin.list_accounts(conn, actor, unit_id=unit_id, search=q, limit=limit,
                                    offset=offset)  # fmt: skip
    return [a.public() for a in found]


@router.post("/api/v1/accounts", tags=["admin"], status_code=201, summary="Create an account")
def create_account(conn: Conn, actor: CurrentActor, req: AccountIn) -> dict[str, Any]:
    spec = admin.AccountSpec(**{**req.model_dump(), "roles": tuple(req.roles),
                                "system_scopes": tuple(req.system_scopes)})  # fmt: skip
    with _admin():
        return admin.create_account(conn, actor, spec).public()


@router.get("/api/v1/accounts/{account_id}", tags=["admin"], summary="One account")
def get_account(conn: Conn, actor: CurrentActor, account_id: PathId) -> dict[str, Any]:
    with _admin():
        return admin.managed_account(conn, actor, account_id, "account-read").public()


@router.patch("/api/v1/accounts/{account_id}", tags=["admin"], summary="Change an account")
def patch_account(
    conn: Conn, actor: CurrentActor, account_id: PathId, req: AccountPatch
) -> dict[str, Any]:
    with _admin():
        changes = req.model_dump(exclude_unset=True)
        return admin.update_account(conn, actor, account_id, changes).public()


class DisableIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=3, max_length=500)


@router.post("/api/v1/accounts/{account_id}/disable", tags=["admin"], summary="Disable")
def disable_account(
    conn: Conn, actor: CurrentActor, account_id: PathId, req: DisableIn
) -> dict[str, Any]:
    with _admin():
        acc = admin.disable_account(conn, actor, account_id, req.reason)
    return {"id": acc.id, "active": False}


@router.post("/api/v1/accounts/{account_id}/enable", tags=["admin"], summary="Enable again")
def enable_account(conn: Conn, actor: CurrentActor, account_id: PathId) -> dict[str, Any]:
    with _admin():
        acc = admin.enable_account(conn, actor, account_id)
    return {"id": acc.id, "active": acc.active}


@router.post("/api/v1/accounts/{account_id}/activation", tags=["admin"],
             summary="Send an activation / password-reset code to the account's phone")  # fmt: skip
def send_activation(
    request: Request, conn: Conn, actor: CurrentActor, account_id: PathId
) -> dict[str, Any]:
    with _admin():
        acc = admin.send_activation(conn, get_settings(request), actor, account_id)
    return {"id": acc.id, "sent": True}


# --- audit trail --------------------------------------------------------------------------


def _parse_date(value: str) -> tuple[str, datetime]:
    prefix = value[:2] if value[:2] in ("ge", "gt", "le", "lt", "eq") else "eq"
    text = value[2:] if value[:2] == prefix else value
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"date={value!r}: expected [ge|le|gt|lt|eq]YYYY-MM-DD[Thh:mm:ss]"
        ) from None
    return prefix, dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def search_audit_events(
    conn: psycopg.Connection[Any], actor: Actor, params: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """FHIR ``AuditEvent`` search for auditors: ``patient``, ``date`` (repeatable, with
    prefixes), ``agent``, ``subtype``/``action``, ``outcome`` (allow/deny), ``basis``
    (e.g. ``break-glass``), ``_count``.
    Raises PermissionError (→ 403, audited) or ValueError (→ 400, says which parameter)."""
    decision = authorize(conn, actor, "search", "AuditEvent")
    if not decision.allowed:
        audit(conn, actor, "search", outcome="deny", basis="deny", resource_type="AuditEvent",
              detail={"reason": decision.reason})  # fmt: skip
        raise PermissionError(decision.reason)
    kw: dict[str, Any] = {"limit": 100}
    for name, value in params:
        if name == "patient":
            pid = value.rsplit("/", 1)[-1]
            if not pid.isdigit():
                raise ValueError(f"patient={value!r}: expected Patient/<person id>")
            kw["person_ids"] = [int(pid)]
        elif name == "date":
            prefix, dt = _parse_date(value)
            if prefix in ("ge", "gt"):
                kw["since"] = dt
            elif prefix in ("le", "lt"):
                kw["until"] = dt + (timedelta(days=1) if len(value) <= 12 else timedelta(0))
            else:
                kw["since"], kw["until"] = dt, dt + timedelta(days=1)
        elif name == "agent":
            kw["actor"] = value.rsplit("/", 1)[-1][:64]
        elif name == "basis":  # e.g. basis=break-glass: every emergency read, for review
            kw["basis"] = value[:40]
        elif name in ("subtype", "action"):
            kw["action"] = value[:40]
        elif name == "outcome":
            kw["outcome"] = {"0": "allow", "4": "deny", "8": "error"}.get(value, value)[:10]
        elif name == "_count":
            if not value.isdigit():
                raise ValueError(f"_count={value!r}: expected a number")
            kw["limit"] = min(int(value), 1000)
    rows = audit_search(conn, **kw)
    audit(conn, actor, "search", outcome="allow", basis=decision.basis,
          resource_type="AuditEvent", detail={"params": params[:20], "count": len(rows)})  # fmt: skip
    return [to_fhir(r) for r in rows]


@router.get("/fhir/AuditEvent", tags=["audit"], summary="Search the audit trail (auditors)")
def audit_events(request: Request, conn: Conn, actor: CurrentActor) -> JSONResponse:
    try:
        entries = search_audit_events(conn, actor, list(request.query_params.multi_items()))
    except PermissionError as exc:
        raise HTTPException(403, f"access denied: {exc}") from None
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "entry": [{"fullUrl": f"AuditEvent/{e['id']}", "resource": e} for e in entries],
    }
    return JSONResponse(bundle, media_type="application/fhir+json")
